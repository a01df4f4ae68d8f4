//! `bench`: training and inference throughput (samples/s) of a config's classifier on the backend
//! chosen by cargo feature, with the data already in memory. `benches/compare.py` runs it beside
//! `benches/pytorch_reference.py` and prints the ratios. With `--lengths MIN-MAX` it measures sequences of
//! different lengths twice, padded and length-aware, side by side. A text config measures characters/s
//! (`benches/compare_lm.py`), a pronunciations config words/s (`benches/compare_g2p.py`).

mod burn_nn;
mod language_model;
mod throughput;
mod transcription;
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
use recurrent_ops::cpu::{InstructionSet, instruction_set, set_instruction_set};
use serde_json::json;
use throughput::{Classify, Plan, Throughput};
use train::TrainConfig;
use workload::{Batch, LengthPlan};

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
    /// Sequences of different lengths, drawn uniformly from MIN-MAX steps, each batch padded to its
    /// longest: measured padded (every row runs every step, as without lengths) and length-aware.
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_lengths)]
    lengths: Option<(usize, usize)>,
    /// With --lengths: sort the lengths before cutting batches, as training's batches grouped by length
    /// are (otherwise each batch mixes lengths at random).
    #[arg(long, requires = "lengths")]
    grouped: bool,
    /// Features per step, for configs that take `model.input_size` from the data (needs --lengths).
    #[arg(long, requires = "lengths")]
    input_size: Option<usize>,
    /// Classes, for configs that take `model.num_classes` from the data (a transcription config:
    /// 40, CMUdict's 39 phonemes and the blank; a language model: 65, Tiny Shakespeare's characters).
    #[arg(long)]
    classes: Option<usize>,
    /// Input tokens with the padding id, for a transcription config that takes `model.vocab_size`
    /// from the data [default: 30, CMUdict's letters and marks].
    #[arg(long)]
    vocab: Option<usize>,
    /// Characters generated per timed repeat, for a language-model config (one stream, one
    /// character at a time).
    #[arg(long, default_value_t = 500)]
    generate_chars: usize,
    /// Run the CPU kernels on this code path (avx512, avx2-fma, portable) instead of the fastest
    /// the CPU has; the bits are the same on each, only the speed differs.
    #[arg(long, value_name = "SET", value_parser = parse_instruction_set)]
    instruction_set: Option<InstructionSet>,
}

/// One of [`InstructionSet::ALL`] by name.
fn parse_instruction_set(text: &str) -> Result<InstructionSet, String> {
    InstructionSet::ALL
        .into_iter()
        .find(|set| set.name() == text)
        .ok_or_else(|| {
            let names: Vec<_> = InstructionSet::ALL.iter().map(|s| s.name()).collect();
            format!(
                "`{text}` is not an instruction set; one of: {}",
                names.join(", ")
            )
        })
}

/// `MIN-MAX` (or one number) as a range of sequence lengths, 1 ≤ MIN ≤ MAX.
fn parse_lengths(text: &str) -> Result<(usize, usize), String> {
    let number = |part: &str| {
        part.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{part}` is not a whole number; write MIN-MAX, e.g. 6-92"))
    };
    let (min, max) = match text.split_once('-') {
        Some((min, max)) => (number(min)?, number(max)?),
        None => (number(text)?, number(text)?),
    };
    if min == 0 || min > max {
        return Err(format!(
            "{min}-{max}: lengths need 1 <= MIN <= MAX, e.g. 6-92"
        ));
    }
    Ok((min, max))
}

/// The sequences measured.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// Every sequence `[steps, features]`, from the config's data layout.
    Fixed([usize; 2]),
    /// Lengths drawn from a range, `features` per step.
    Lengths { plan: LengthPlan, features: usize },
}

impl Workload {
    /// `count` batches of `batch_size` sequences for `classes` classes on `device`.
    fn batches<B: Backend>(
        self,
        batch_size: usize,
        classes: usize,
        seed: u64,
        device: &B::Device,
    ) -> Vec<Batch<B>> {
        match self {
            Workload::Fixed(shape) => {
                workload::random_batches(DISTINCT_BATCHES, batch_size, shape, classes, device)
            }
            Workload::Lengths { plan, features } => workload::random_batches_with_lengths(
                DISTINCT_BATCHES,
                batch_size,
                plan,
                features,
                classes,
                seed,
                device,
            ),
        }
    }

    /// How the steps are described in the report.
    fn steps(self) -> String {
        match self {
            Workload::Fixed([steps, _]) => format!("{steps} steps"),
            Workload::Lengths { plan, .. } => format!(
                "{}-{} steps{}",
                plan.min,
                plan.max,
                if plan.grouped {
                    ", grouped by length"
                } else {
                    ", mixed lengths"
                }
            ),
        }
    }
}

/// One measured variant: its name (padded or length-aware, when lengths are measured), training and
/// inference throughput, and the steps its training batches run against the steps their sequences have.
struct Measured {
    variant: Option<&'static str>,
    training: Throughput,
    inference: Vec<Throughput>,
    steps_run: usize,
    steps_real: usize,
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
    if let Some(set) = args.instruction_set {
        set_instruction_set(Some(set)).context("--instruction-set")?;
    }
    let mut config = TrainConfig::load(&args.config)?;
    if config.data.source == data::DataSource::Text {
        return language_model_report(&args, config, retained_memory);
    }
    if config.data.source == data::DataSource::Pronunciations {
        return transcription_report(&args, config, retained_memory);
    }
    if let Some(classes) = args.classes {
        config.model.num_classes = classes;
    }
    if let Some(features) = args.input_size {
        config.model.input_size = features;
    }
    if config.model.num_classes == 0 {
        bail!(
            "{} takes model.num_classes from the data; pass --classes",
            args.config.display()
        );
    }
    let device = backend::device(args.device)?;
    let workload = match args.lengths {
        None => Workload::Fixed(sequence_shape(&config)?),
        Some((min, max)) => {
            if config.model.input_size == 0 {
                bail!(
                    "{} takes model.input_size from the data; pass --input-size",
                    args.config.display()
                );
            }
            Workload::Lengths {
                plan: LengthPlan {
                    min,
                    max,
                    grouped: args.grouped,
                },
                features: config.model.input_size,
            }
        }
    };
    if args.model == Implementation::BurnNn && args.lengths.is_some() {
        bail!("--model burn-nn measures burn::nn::Lstm, which has no per-sequence lengths");
    }
    if args.model == Implementation::BurnNn && config.model.cell != Cell::Lstm {
        bail!(
            "--model burn-nn measures burn::nn::Lstm, but {} has cell `{}`",
            args.config.display(),
            config.model.cell
        );
    }
    model::set_fused_kernels(args.model != Implementation::StepByStep);
    // Without lengths one variant; with them, the same batches padded and length-aware, measured in
    // turn twice (padded, length-aware, padded, length-aware) so that neither gains from going second.
    let variants: &[(Option<&'static str>, bool)] = match workload {
        Workload::Fixed(_) => &[(None, false)],
        Workload::Lengths { .. } => &[
            (Some("padded"), true),
            (Some("length-aware"), false),
            (Some("padded"), true),
            (Some("length-aware"), false),
        ],
    };
    let mut measured: Vec<Measured> = Vec::new();
    for &(variant, padded) in variants {
        let run = Run {
            args: &args,
            config: &config,
            workload,
            padded,
            device: &device,
        };
        let (training, inference, (steps_run, steps_real)) = match args.model {
            Implementation::Ours | Implementation::StepByStep => run.measure(
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
            Implementation::BurnNn => run.measure(
                |d| Ok(BurnLstm::<Training>::new(&config.model, d)),
                |d| Ok(BurnLstm::<Inference>::new(&config.model, d)),
            )?,
        };
        // The second pass of a variant adds its repeats to the first's.
        if let Some(first) = measured.iter_mut().find(|m| m.variant == variant) {
            first.training.repeats.extend(training.repeats);
            for (a, b) in first.inference.iter_mut().zip(inference) {
                a.repeats.extend(b.repeats);
            }
        } else {
            measured.push(Measured {
                variant,
                training,
                inference,
                steps_run,
                steps_real,
            });
        }
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = &config.model;
    if args.json {
        let steps = match workload {
            Workload::Fixed([steps, _]) => json!(steps),
            Workload::Lengths { plan, .. } => {
                json!({"min": plan.min, "max": plan.max, "grouped": plan.grouped})
            }
        };
        let variant = |m: &Measured| {
            json!({
                "train": m.training.to_json(),
                "infer": m.inference.iter().map(Throughput::to_json).collect::<Vec<_>>(),
                "train_steps_run": m.steps_run,
                "train_steps_in_sequences": m.steps_real,
            })
        };
        let last = measured.last().expect("one variant at least");
        let mut report = json!({
            "framework": "burn",
            "backend": backend::NAME,
            "implementation": args.model.name(),
            "config": args.config.display().to_string(),
            "model": {"cell": m.cell.name(), "input_size": m.input_size, "hidden_size": m.hidden_size,
                      "num_layers": m.num_layers, "bidirectional": m.bidirectional,
                      "num_classes": m.num_classes, "steps": steps},
            "cores": cores,
            "instruction_set": instruction_set().name(),
            "retained_freed_memory": retained_memory,
            "train": last.training.to_json(),
            "infer": last.inference.iter().map(Throughput::to_json).collect::<Vec<_>>(),
        });
        if args.lengths.is_some() {
            report["variants"] = measured
                .iter()
                .map(|m| (m.variant.unwrap_or_default().to_string(), variant(m)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        println!("{report}");
        return Ok(());
    }
    println!(
        "{}: {} ({}{} {}→{} ×{}, {}, Linear {}→{}) on {}, {cores} cores, {} kernels, {}; median of {} repeats{}",
        args.model.name(),
        args.config.display(),
        if m.bidirectional {
            "bidirectional "
        } else {
            ""
        },
        m.cell,
        m.input_size,
        m.hidden_size,
        m.num_layers,
        workload.steps(),
        m.hidden_size * if m.bidirectional { 2 } else { 1 },
        m.num_classes,
        backend::NAME,
        instruction_set(),
        if retained_memory {
            "freed memory retained"
        } else {
            "allocator defaults"
        },
        args.repeats,
        if args.lengths.is_some() {
            " in each of two passes"
        } else {
            ""
        }
    );
    for m in &measured {
        let variant = m.variant.map(|v| format!("  {v:<12}")).unwrap_or_default();
        println!(
            "train  batch {:>5}:{variant} {:>9.0} samples/s",
            m.training.batch_size,
            m.training.median()
        );
        for t in &m.inference {
            println!(
                "infer  batch {:>5}:{variant} {:>9.0} samples/s",
                t.batch_size,
                t.median()
            );
        }
    }
    if let [padded, aware] = &measured[..] {
        println!(
            "length-aware / padded: train {:.2}x; {}; training batches run {} steps padded, {} length-aware ({:.2}x fewer)",
            aware.training.median() / padded.training.median(),
            aware
                .inference
                .iter()
                .zip(&padded.inference)
                .map(|(a, p)| format!(
                    "infer batch {} {:.2}x",
                    a.batch_size,
                    a.median() / p.median()
                ))
                .collect::<Vec<_>>()
                .join(", "),
            padded.steps_run,
            aware.steps_run,
            padded.steps_run as f64 / aware.steps_run as f64
        );
    }
    Ok(())
}

/// A JSON report: what was measured and where (framework, backend, config, `model`, cores,
/// instruction set, allocator policy), then the fields of `figures`.
fn report(
    args: &Args,
    model: serde_json::Value,
    retained_memory: bool,
    figures: serde_json::Value,
) -> serde_json::Value {
    let mut report = json!({
        "framework": "burn",
        "backend": backend::NAME,
        "config": args.config.display().to_string(),
        "model": model,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "instruction_set": instruction_set().name(),
        "retained_freed_memory": retained_memory,
    });
    if let (Some(report), serde_json::Value::Object(figures)) = (report.as_object_mut(), figures) {
        report.extend(figures);
    }
    report
}

/// A language-model config: training and generation characters/s, with the GFLOP/s they mean.
fn language_model_report(
    args: &Args,
    mut config: TrainConfig,
    retained_memory: bool,
) -> anyhow::Result<()> {
    let classes = args.classes.unwrap_or(65);
    if config.model.num_classes == 0 {
        config.model.num_classes = classes;
    }
    if config.model.vocab_size.is_none_or(|v| v == 0) {
        config.model.vocab_size = Some(config.model.num_classes);
    }
    let device = backend::device(args.device)?;
    let plan = language_model::Plan {
        repeats: args.repeats,
        train_steps: args.train_steps,
        generated: args.generate_chars,
    };
    let training = language_model::training::<Training>(&config, plan, &device)?;
    let generation = language_model::generation::<Inference>(&config, plan, &device)?;
    let (train_flops, generate_flops) = language_model::flops_per_char(&config);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let train_gflops = training.median() * train_flops / 1e9;
    let generate_gflops = generation.median() * generate_flops / 1e9;
    if args.json {
        println!(
            "{}",
            report(
                args,
                language_model::describe(&config),
                retained_memory,
                json!({
                    "train": {"chars_per_s": training.median(), "repeats": training.repeats,
                              "flops_per_char": train_flops, "gflops": train_gflops},
                    "generate": {"chars_per_s": generation.median(), "repeats": generation.repeats,
                                 "flops_per_char": generate_flops, "gflops": generate_gflops},
                })
            )
        );
        return Ok(());
    }
    let m = &config.model;
    println!(
        "{}: Embedding {}→{} → {} {}×{} → Linear {}, windows of {} × batch {}, on {}, {cores} cores, {} kernels; median of {} repeats",
        args.config.display(),
        config.model.num_classes,
        m.input_size,
        m.cell,
        m.num_layers,
        m.hidden_size,
        m.num_classes,
        config.data.text.as_ref().map_or(0, |t| t.window),
        config.batch_size,
        backend::NAME,
        instruction_set(),
        args.repeats
    );
    println!(
        "train     {:>9.0} chars/s  ({train_gflops:.1} GFLOP/s)",
        training.median()
    );
    println!(
        "generate  {:>9.0} chars/s  ({generate_gflops:.2} GFLOP/s, batch 1)",
        generation.median()
    );
    Ok(())
}

/// A transcription config: training and greedy transcription words/s.
fn transcription_report(
    args: &Args,
    mut config: TrainConfig,
    retained_memory: bool,
) -> anyhow::Result<()> {
    if config.model.num_classes == 0 {
        config.model.num_classes = args.classes.unwrap_or(40);
    }
    if config.model.vocab_size.is_none_or(|v| v == 0) {
        config.model.vocab_size = Some(args.vocab.unwrap_or(30));
    }
    if config.model.num_classes < 2 || config.model.vocab_size < Some(2) {
        bail!(
            "a transcriber needs 2 classes (the blank and one token) and 2 input tokens at least"
        );
    }
    let device = backend::device(args.device)?;
    let plan = transcription::Plan {
        repeats: args.repeats,
        train_steps: args.train_steps,
        infer_batches: args.infer_batch.clone(),
        infer_words: args.infer_samples,
    };
    Training::seed(&device, config.seed);
    let training = transcription::training::<Training>(&config, &plan, &device)?;
    let transcription = transcription::transcription::<Inference>(&config, &plan, &device)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.json {
        println!(
            "{}",
            report(
                args,
                transcription::describe(&config),
                retained_memory,
                json!({
                    "train": {"words_per_s": training.median(), "batch_size": training.batch_size,
                              "repeats": training.repeats},
                    "transcribe": transcription.iter().map(|t| json!({
                        "batch_size": t.batch_size, "words_per_s": t.median(), "repeats": t.repeats,
                    })).collect::<Vec<_>>(),
                })
            )
        );
        return Ok(());
    }
    let m = &config.model;
    println!(
        "{}: Embedding {}→{} → {}{} {}×{} → Linear {}, CTC; words of {}-{} letters, batch {}, on {}, {cores} cores, {} kernels; median of {} repeats",
        args.config.display(),
        m.vocab_size.unwrap_or(0),
        m.input_size,
        if m.bidirectional {
            "bidirectional "
        } else {
            ""
        },
        m.cell,
        m.num_layers,
        m.hidden_size,
        m.num_classes,
        transcription::LETTERS.0,
        transcription::LETTERS.1,
        config.batch_size,
        backend::NAME,
        instruction_set(),
        args.repeats
    );
    println!("train                 {:>9.0} words/s", training.median());
    for t in &transcription {
        println!(
            "transcribe batch {:>4} {:>9.0} words/s (greedy)",
            t.batch_size,
            t.median()
        );
    }
    Ok(())
}

/// One measurement: the config's model on one workload, padded or not, on one device.
struct Run<'a> {
    args: &'a Args,
    config: &'a TrainConfig,
    workload: Workload,
    /// Drop the batches' lengths: every row runs to its batch's longest sequence.
    padded: bool,
    device: &'a backend::Device,
}

impl Run<'_> {
    /// The batches as measured: without their lengths when padded.
    fn prepared<B: Backend>(&self, batches: Vec<Batch<B>>) -> Vec<Batch<B>> {
        if self.padded {
            batches.iter().map(Batch::padded).collect()
        } else {
            batches
        }
    }

    /// Training and inference throughput of one implementation, built by `train_model` (autodiff
    /// backend) and `infer_model` from the seed of the config; and the sequence steps the training
    /// batches run against the steps their sequences hold.
    fn measure<MT, MI>(
        &self,
        train_model: impl FnOnce(&backend::Device) -> anyhow::Result<MT>,
        infer_model: impl FnOnce(&backend::Device) -> anyhow::Result<MI>,
    ) -> anyhow::Result<(Throughput, Vec<Throughput>, (usize, usize))>
    where
        MT: AutodiffModule<Training> + Classify<Training> + 'static,
        MI: Classify<Inference>,
    {
        let (args, config, device) = (self.args, self.config, self.device);
        let classes = config.model.num_classes;
        Training::seed(device, config.seed);
        let model = train_model(device)?;
        let all =
            self.workload
                .batches::<Training>(config.batch_size, classes, config.seed, device);
        let steps = all.iter().fold((0, 0), |(run, real), batch| {
            let [rows, time, _] = batch.inputs.dims();
            let lengths = batch.lengths.as_ref();
            let real_steps = lengths.map_or(rows * time, |l| l.iter().sum());
            let run_steps = if self.padded { rows * time } else { real_steps };
            (run + run_steps, real + real_steps)
        });
        let batches = self.prepared(all);
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
                let batches = self.prepared(self.workload.batches::<Inference>(
                    batch_size,
                    classes,
                    config.seed,
                    device,
                ));
                let iterations = args.infer_samples.div_ceil(batch_size);
                let plan = Plan {
                    warmup: (iterations / 10).max(2),
                    iterations,
                    repeats: args.repeats,
                };
                throughput::inference(&model, &batches, plan, device)
            })
            .collect();
        Ok((training, inference, steps))
    }
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
