//! Checks that Burn reproduces a PyTorch reference file: the logits of the imported weights, and the
//! logits after two SGD steps, on every backend this build enables.
//!
//! `cargo run --release -p model --example parity -- [--step-by-step] FILE.safetensors [FILE...]`
//! Files with a `lengths` tensor were run by PyTorch on packed sequences and are checked through
//! `forward_lengths`; `--step-by-step` turns the fused kernels off and checks the fallback instead.
//! Exits non-zero when a difference exceeds its tolerance (`model::parity`: 2.5e-7 for the logits before and
//! after two steps, 5e-7 for the loss).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use model::parity::{
    self, AFTER_STEPS_TOLERANCE, LANGUAGE_MODEL_TOLERANCE, LOGITS_TOLERANCE, LOSS_TOLERANCE,
    ParityReport,
};
use model::pytorch::StateDict;

#[cfg(not(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
)))]
compile_error!("enable at least one backend feature: ndarray, flex, wgpu or cuda");

/// Compare Burn with the PyTorch outputs stored in reference safetensors files.
#[derive(Parser)]
struct Args {
    /// Reference files (PyTorch state_dict + `input`, `target`, `logits`, `logits_after_2_steps`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run every layer step by step (the fallback every kernel is tested against), not fused.
    #[arg(long)]
    step_by_step: bool,
}

/// One backend this build enables, by name.
fn run_backend<B: AutodiffBackend>(
    name: &str,
    reference: &StateDict,
    device: B::Device,
) -> anyhow::Result<bool> {
    if reference.metadata.get("format").map(String::as_str) == Some("lm-parity-1") {
        let report = parity::check_language_model::<B>(reference, &device)
            .with_context(|| format!("language-model parity check on {name} failed"))?;
        println!(
            "[{name}] two windows, state carried: logits max_abs_diff={:.3e} loss={:.3e} final state={:.3e} gradients={:.3e} ({})",
            report.logits_max_abs_diff,
            report.loss_max_abs_diff,
            report.state_max_abs_diff,
            report.grad_max_abs_diff,
            report.worst_grad
        );
        return Ok(report.passes());
    }
    let report: ParityReport = parity::check::<B>(reference, &device)
        .with_context(|| format!("parity check on {name} failed"))?;
    println!(
        "[{name}] logits max_abs_diff={:.3e}",
        report.logits_max_abs_diff
    );
    println!(
        "[{name}] after_2_steps max_abs_diff={:.3e}",
        report.after_2_steps_max_abs_diff
    );
    if let Some(loss) = report.loss_abs_diff {
        println!("[{name}] loss abs_diff={loss:.3e}");
    }
    Ok(report.passes())
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    model::set_fused_kernels(!args.step_by_step);
    let mut all_pass = true;
    for file in &args.files {
        let reference = StateDict::read(file)?;
        let config = reference.model_config()?;
        println!(
            "{}: cell={} vocab_size={:?} input_size={} hidden_size={} num_layers={} num_classes={}",
            file.display(),
            config.cell,
            config.vocab_size,
            config.input_size,
            config.hidden_size,
            config.num_layers,
            config.num_classes
        );
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
    if all_pass {
        println!(
            "parity OK (tolerances: logits {LOGITS_TOLERANCE:e}, after 2 steps {AFTER_STEPS_TOLERANCE:e}, loss {LOSS_TOLERANCE:e}; language models {LANGUAGE_MODEL_TOLERANCE:e})"
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "parity FAILED (tolerances: logits {LOGITS_TOLERANCE:e}, after 2 steps {AFTER_STEPS_TOLERANCE:e}, loss {LOSS_TOLERANCE:e}; language models {LANGUAGE_MODEL_TOLERANCE:e})"
        );
        Ok(ExitCode::FAILURE)
    }
}
