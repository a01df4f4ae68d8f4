//! Checks the CTC loss against PyTorch's `nn.CTCLoss`, on every backend this build enables.
//!
//! `cargo run --release -p model --example ctc_parity -- FILE.safetensors [FILE...]`
//! A `ctc-loss-1` file holds `log_probs` `[T, N, C]`, `targets` `[N, S]` (padded), `input_lengths`,
//! `target_lengths`, `loss` (`reduction='mean'`) and `grad` `[T, N, C]`; a `ctc-model-1` file a small
//! bidirectional LSTM transcriber's weights, inputs, loss and parameter gradients
//! (`tests/fixtures/make_ctc_fixtures.py`). Prints the largest differences and exits non-zero past
//! `model::parity::CTC_TOLERANCE` (1e-6).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use model::parity::{self, CTC_TOLERANCE, CtcReport};
use model::pytorch::StateDict;

#[cfg(not(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
)))]
compile_error!("enable at least one backend feature: ndarray, flex, wgpu or cuda");

/// Compare the CTC loss with PyTorch's, from reference safetensors files.
#[derive(Parser)]
struct Args {
    /// Reference files (`format` metadata `ctc-loss-1` or `ctc-model-1`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn run_backend<B: AutodiffBackend>(
    name: &str,
    reference: &StateDict,
    device: B::Device,
) -> anyhow::Result<bool> {
    let format = reference.metadata.get("format").map(String::as_str);
    let report: CtcReport = match format {
        Some("ctc-loss-1") => parity::check_ctc_loss::<B>(reference, &device),
        Some("ctc-model-1") => parity::check_ctc_model::<B>(reference, &device),
        other => anyhow::bail!(
            "{}: metadata `format` is {other:?}; expected ctc-loss-1 or ctc-model-1 (files written by tests/fixtures/make_ctc_fixtures.py)",
            reference.source.display()
        ),
    }
    .with_context(|| format!("CTC parity check on {name} failed"))?;
    println!(
        "[{name}] loss abs_diff={:.3e} log_probs max_abs_diff={:.3e} gradients max_abs_diff={:.3e} ({})",
        report.loss_abs_diff,
        report.log_probs_max_abs_diff,
        report.grad_max_abs_diff,
        report.worst_grad
    );
    Ok(report.passes())
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let mut all_pass = true;
    for file in &args.files {
        let reference = StateDict::read(file)?;
        println!("{}", file.display());
        #[cfg(feature = "ndarray")]
        {
            all_pass &= run_backend::<Autodiff<burn::backend::NdArray>>(
                "ndarray",
                &reference,
                Default::default(),
            )?;
        }
        #[cfg(feature = "flex")]
        {
            all_pass &= run_backend::<Autodiff<burn::backend::Flex>>(
                "flex",
                &reference,
                Default::default(),
            )?;
        }
        #[cfg(feature = "wgpu")]
        {
            all_pass &= run_backend::<Autodiff<burn::backend::Wgpu>>(
                "wgpu",
                &reference,
                Default::default(),
            )?;
        }
        #[cfg(feature = "cuda")]
        {
            all_pass &= run_backend::<Autodiff<burn::backend::Cuda>>(
                "cuda",
                &reference,
                Default::default(),
            )?;
        }
    }
    let verdict = if all_pass { "OK" } else { "FAILED" };
    println!("CTC parity {verdict} (tolerance {CTC_TOLERANCE:e})");
    Ok(if all_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
