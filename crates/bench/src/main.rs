//! `bench`: training and inference throughput (samples/s) of a config's classifier on the backend
//! chosen by cargo feature, with the data already in memory. `benches/compare.py` runs it beside
//! `benches/pytorch_reference.py` and prints the ratios.

mod burn_nn;
mod throughput;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use backend::{DeviceKind, Inference, Training};
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn_nn::BurnLstm;
use clap::{Parser, ValueEnum};
use model::Cell;
use serde_json::json;
use throughput::{Classify, Plan, Throughput};
use train::TrainConfig;

/// Which implementation of the config's model to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Implementation {
    /// This project's classifier: one fused operation per layer where the backend has one.
    Ours,
    /// This project's classifier with the fused kernels turned off: every layer step by step in
    /// Burn tensor operations (the baseline of the kernels).
    StepByStep,
    /// Burn's own `burn::nn::Lstm` layers, stacked, with the same head (LSTM configs only).
    BurnNn,
}

impl Implementation {
    fn name(self) -> &'static str {
        match self {
            Implementation::Ours => "lstm-mnist",
            Implementation::StepByStep => "lstm-mnist, step by step",
            Implementation::BurnNn => "burn::nn::Lstm",
        }
    }
}

/// Measure training and inference samples/s of a config's model, data in memory (release build).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The config whose model, optimizer and batch size are measured.
    #[arg(long, value_name = "FILE", default_value = "configs/seed.json")]
    config: PathBuf,
    /// Training steps per timed repeat.
    #[arg(long, default_value_t = 300)]
    train_steps: usize,
    /// Inference batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "64,1000")]
    infer_batch: Vec<usize>,
    /// Samples classified per timed inference repeat (rounded up to whole batches).
    #[arg(long, default_value_t = 20_000)]
    infer_samples: usize,
    /// Timed repeats of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Device kind for the wgpu backend (the CPU backends take auto or cpu).
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
    /// The implementation measured: ours, or Burn's own LSTM layers as a baseline.
    #[arg(long, value_enum, default_value_t = Implementation::Ours)]
    model: Implementation,
    /// Leave the allocator's policy for freed memory at its default, as the baseline of
    /// `backend::retain_freed_memory`, which the other binaries apply.
    #[arg(long)]
    default_malloc: bool,
}

/// Distinct batches cycled through, so that no result is a cache artefact of a single input.
const DISTINCT_BATCHES: usize = 8;

fn main() -> ExitCode {
    let args = Args::parse();
    let retained = !args.default_malloc && backend::retain_freed_memory();
    match run(args, retained) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args, retained_memory: bool) -> anyhow::Result<()> {
    if args.train_steps == 0 || args.repeats == 0 || args.infer_samples == 0 {
        bail!("--train-steps, --repeats and --infer-samples must be at least 1");
    }
    if let Some(zero) = args.infer_batch.iter().find(|&&b| b == 0) {
        bail!("--infer-batch {zero}: batch sizes must be at least 1");
    }
    let config = TrainConfig::load(&args.config)?;
    let device = backend::device(args.device)?;
    let shape = sequence_shape(&config)?;

    if args.model == Implementation::BurnNn && config.model.cell != Cell::Lstm {
        bail!(
            "--model burn-nn measures burn::nn::Lstm, but {} has cell `{}`",
            args.config.display(),
            config.model.cell
        );
    }
    model::set_fused_kernels(args.model != Implementation::StepByStep);
    let (training, inference) = match args.model {
        Implementation::Ours | Implementation::StepByStep => measure(
            &args,
            &config,
            shape,
            &device,
            |d| {
                config
                    .model
                    .init::<Training>(d)
                    .context("cannot build the model")
            },
            |d| {
                config
                    .model
                    .init::<Inference>(d)
                    .context("cannot build the model")
            },
        )?,
        Implementation::BurnNn => measure(
            &args,
            &config,
            shape,
            &device,
            |d| Ok(BurnLstm::<Training>::new(&config.model, d)),
            |d| Ok(BurnLstm::<Inference>::new(&config.model, d)),
        )?,
    };

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = &config.model;
    if args.json {
        let report = json!({
            "framework": "burn",
            "backend": backend::NAME,
            "implementation": args.model.name(),
            "config": args.config.display().to_string(),
            "model": {"cell": m.cell.name(), "input_size": m.input_size, "hidden_size": m.hidden_size,
                      "num_layers": m.num_layers, "num_classes": m.num_classes, "steps": shape[0]},
            "cores": cores,
            "retained_freed_memory": retained_memory,
            "train": training.to_json(),
            "infer": inference.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
        });
        println!("{report}");
    } else {
        println!(
            "{}: {} ({} {}→{} ×{}, {} steps, Linear {}→{}) on {}, {cores} cores, {}; median of {} repeats",
            args.model.name(),
            args.config.display(),
            m.cell,
            m.input_size,
            m.hidden_size,
            m.num_layers,
            shape[0],
            m.hidden_size,
            m.num_classes,
            backend::NAME,
            if retained_memory {
                "freed memory retained"
            } else {
                "allocator defaults"
            },
            args.repeats
        );
        println!(
            "train  batch {:>5}: {:>9.0} samples/s",
            training.batch_size,
            training.median()
        );
        for t in &inference {
            println!(
                "infer  batch {:>5}: {:>9.0} samples/s",
                t.batch_size,
                t.median()
            );
        }
    }
    Ok(())
}

/// Training and inference throughput of one implementation, built by `train_model` (autodiff
/// backend) and `infer_model` from the seed of the config.
fn measure<MT, MI>(
    args: &Args,
    config: &TrainConfig,
    shape: [usize; 2],
    device: &backend::Device,
    train_model: impl FnOnce(&backend::Device) -> anyhow::Result<MT>,
    infer_model: impl FnOnce(&backend::Device) -> anyhow::Result<MI>,
) -> anyhow::Result<(Throughput, Vec<Throughput>)>
where
    MT: AutodiffModule<Training> + Classify<Training> + 'static,
    MI: Classify<Inference>,
{
    let classes = config.model.num_classes;
    Training::seed(device, config.seed);
    let model = train_model(device)?;
    let batches = workload::random_batches::<Training>(
        DISTINCT_BATCHES,
        config.batch_size,
        shape,
        classes,
        device,
    );
    // The device is `Copy` on the CPU backends but not on wgpu.
    #[allow(clippy::clone_on_copy)]
    let training_device = device.clone();
    let clipping = config
        .gradient_clipping
        .as_ref()
        .and_then(train::ClippingConfig::optimizer_clipping);
    let training = config.optimizer.with_optimizer(
        clipping,
        throughput::Training {
            model,
            batches: &batches,
            plan: Plan {
                warmup: (args.train_steps / 10).max(5),
                iterations: args.train_steps,
                repeats: args.repeats,
            },
            device: training_device,
        },
    );

    Inference::seed(device, config.seed);
    let model = infer_model(device)?;
    let inference = args
        .infer_batch
        .iter()
        .map(|&batch_size| {
            let batches = workload::random_batches::<Inference>(
                DISTINCT_BATCHES,
                batch_size,
                shape,
                classes,
                device,
            );
            let iterations = args.infer_samples.div_ceil(batch_size);
            let plan = Plan {
                warmup: (iterations / 10).max(2),
                iterations,
                repeats: args.repeats,
            };
            throughput::inference(&model, &batches, plan, device)
        })
        .collect();
    Ok((training, inference))
}

/// `[steps, features]` of the config's sequences for 28×28 images.
fn sequence_shape(config: &TrainConfig) -> anyhow::Result<[usize; 2]> {
    let (steps, features) = config.data.sequence.shape(28, 28);
    if features != config.model.input_size {
        bail!(
            "{}: model.input_size is {} but `{}` sequences have {features} features",
            config.data.sequence.name(),
            config.model.input_size,
            config.data.sequence.name()
        );
    }
    Ok([steps, features])
}
