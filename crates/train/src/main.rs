//! `train`: trains a recurrent classifier on MNIST from a JSON config and writes a run directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use backend::DeviceKind;
use clap::Parser;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use data::{DataSource, Mirrors, MnistFiles};
use train::download::download_progress;
use train::{Display, RunDir, RunOptions, TrainConfig, TrainError};

/// Train a recurrent sequence model with Burn, as the config's `data.source` says: a classifier of
/// `.ts` sequence files or of MNIST images read as sequences (rows or pixels), a character language
/// model of a text, or a CTC transcriber of a pronouncing dictionary (letters to sounds).
///
/// Writes the run directory: effective config.json, model.mpk, metrics.json, checkpoints and
/// Burn's logs. The backend is chosen at build time: --features ndarray (default), flex, wgpu or cuda.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// JSON config to train from [default: configs/seed.json]. With --resume, the run's own config.json is used.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Number of epochs (overrides `num_epochs`; with --resume, the new total).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// The data directory (overrides `data.dir`): for MNIST the four IDX files (else MNIST_DIR, then
    /// the cache, where MNIST is downloaded when it is nowhere); for `data.source: "ts"` the directory
    /// holding one *_TRAIN.ts and one *_TEST.ts; for `data.source: "text"` the directory holding
    /// the text (Tiny Shakespeare is downloaded there when missing); for `"pronunciations"` the
    /// directory holding the dictionary (`data.pronunciations.file`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Base URL of a mirror holding the four MNIST *.gz files, tried instead of the default mirrors
    /// (repeat to try several in order) [default: MNIST_MIRROR, else torchvision's mirrors]; for a
    /// text run, the URL of Tiny Shakespeare's input.txt itself.
    #[arg(long, value_name = "URL")]
    mirror: Vec<String>,
    /// Never download: fail if MNIST is not in --data-dir, MNIST_DIR or the cache.
    #[arg(long, conflicts_with = "mirror")]
    offline: bool,
    /// Random seed for initialization and shuffling (overrides `seed`).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// The run directory [default: artifacts/<config file stem>].
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Continue the run in the run directory from its last checkpoint.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Replace a previous run in the run directory.
    #[arg(long)]
    overwrite: bool,
    /// End the run in the run directory at its last completed epoch, without training: the model of
    /// the epoch its `model_selection` chooses becomes model.mpk and the test set (if held apart) is
    /// evaluated once on it.
    #[arg(long, conflicts_with_all = ["resume", "overwrite", "epochs", "seed"])]
    finish: bool,
    /// Print one line per epoch (and per downloaded file) even in a terminal, instead of Burn's TUI
    /// (and progress bars).
    #[arg(long)]
    plain: bool,
    /// Device kind for the wgpu backend (the CPU backends take auto or cpu).
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
}

fn main() -> ExitCode {
    backend::retain_freed_memory();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            match error.downcast_ref::<TrainError>() {
                // The shell's convention for "stopped by SIGINT".
                Some(TrainError::Interrupted { .. }) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM stop the run after the current batch, keeping every completed
/// epoch's checkpoint; a second signal exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("second signal: exiting now; completed epochs stay checkpointed");
            std::process::exit(130);
        }
        eprintln!("signal received: stopping after the current batch (again to exit at once)");
    })?;
    Ok(stop)
}

fn run(args: Args) -> anyhow::Result<()> {
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("configs/seed.json"));
    let run_dir = args
        .artifacts
        .clone()
        .unwrap_or_else(|| default_run_dir(&config_path));
    // With --resume or --finish the run's own config.json is read, whatever --config says.
    let source = if args.resume || args.finish {
        RunDir::new(&run_dir).config()
    } else {
        config_path.clone()
    };
    if args.resume || args.finish {
        if args.seed.is_some() {
            bail!("--seed cannot change a run being resumed; start a new run with --artifacts DIR");
        }
        if !source.is_file() {
            bail!(
                "cannot {} {}: it has no config.json; is this a run directory (see --artifacts)?",
                if args.finish { "finish" } else { "resume" },
                run_dir.display()
            );
        }
    }
    let mut config = TrainConfig::load(&source)?;
    if let Some(epochs) = args.epochs {
        config.num_epochs = epochs;
    }
    if let Some(dir) = args.data_dir {
        config.data.dir = Some(dir);
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    // MNIST is found (or, unless --offline, fetched into the cache) before anything else is said;
    // so is a text (Tiny Shakespeare is fetched where the config says it lies, else into the cache).
    if config.data.source == DataSource::Text {
        let file = config
            .data
            .text
            .as_ref()
            .map_or("input.txt".into(), |t| t.file.clone());
        let dir = match config.data.dir.clone() {
            Some(dir) => dir,
            None => data::text_cache_dir().ok_or_else(|| {
                anyhow::anyhow!("no cache directory on this platform: pass --data-dir DIR")
            })?,
        };
        if args.mirror.len() > 1 {
            bail!("a text run takes one --mirror: the URL of the text file itself");
        }
        let path = dir.join(&file);
        // Only Tiny Shakespeare (input.txt) is downloaded; another text must be where it is named.
        if file != "input.txt" && !path.exists() {
            bail!(
                "{} does not exist: put the text there, or name another with data.text.file and --data-dir (only Tiny Shakespeare, input.txt, is downloaded)",
                path.display()
            );
        }
        data::fetch_text(&path, args.mirror.first().map(String::as_str), args.offline)?;
        config.data.dir = Some(dir);
    } else if config.data.source != DataSource::Mnist {
        // A `.ts` directory is read by `train` itself, which names any problem with it.
    } else if args.offline {
        MnistFiles::locate(config.data.dir.as_deref())?;
    } else {
        let mirrors = Mirrors::from_cli_or_env(args.mirror)?;
        let mut progress = download_progress(args.plain);
        MnistFiles::locate_or_download(config.data.dir.as_deref(), &mirrors, progress.as_mut())?;
    }
    let device = backend::device(args.device)?;
    if args.finish {
        println!("finishing {} on {}", run_dir.display(), backend::NAME);
        let outcome = train::finish::<backend::Training>(config, run_dir, device)?;
        if let Some(epoch) = outcome.metrics.model_epoch {
            println!(
                "model of epoch {epoch} saved to {}",
                outcome.run_dir.model_file().display()
            );
        }
        return Ok(());
    }
    let stop = stop_on_signals()?;
    println!(
        "training on {} ({}): {} -> {}",
        backend::NAME,
        describe(&config),
        source.display(),
        run_dir.display()
    );
    let outcome = train::train::<backend::Training>(
        RunOptions {
            config,
            run_dir,
            resume: args.resume,
            overwrite: args.overwrite,
            backend: backend::NAME.to_string(),
            display: if args.plain {
                Display::Lines
            } else {
                Display::Auto
            },
            stop,
        },
        device,
    )?;
    if let Some(last) = outcome.metrics.epochs.last() {
        println!(
            "final: epoch {} valid accuracy {:.2}% loss {:.4}",
            last.epoch, last.valid_accuracy, last.valid_loss
        );
    }
    println!("model saved to {}", outcome.run_dir.model_file().display());
    Ok(())
}

fn default_run_dir(config: &Path) -> PathBuf {
    let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned());
    PathBuf::from("artifacts").join(stem.unwrap_or_else(|| "run".into()))
}

fn describe(config: &TrainConfig) -> String {
    let m = &config.model;
    format!(
        "{} {}->{} x{} layers{}{}, {} classes, {}, batch {}, {} epochs",
        m.cell,
        m.input_size,
        m.hidden_size,
        m.num_layers,
        if m.bidirectional {
            ", bidirectional"
        } else {
            ""
        },
        if m.dropout > 0.0 {
            format!(", dropout {}", m.dropout)
        } else {
            String::new()
        },
        if m.num_classes == 0 {
            "the data's".to_string()
        } else {
            m.num_classes.to_string()
        },
        match config.data.source {
            DataSource::Mnist => format!("MNIST {} sequences", config.data.sequence.name()),
            DataSource::Text => format!(
                "the text {} in windows of {} characters",
                config
                    .data
                    .dir
                    .as_deref()
                    .map_or("(no directory)".into(), |d| d
                        .join(config.data.text.as_ref().map_or("", |t| t.file.as_str()))
                        .display()
                        .to_string()),
                config.data.text.as_ref().map_or(0, |t| t.window)
            ),
            DataSource::Pronunciations => format!(
                "the pronouncing dictionary {}",
                config
                    .data
                    .dir
                    .as_deref()
                    .map_or("(no directory)".into(), |d| d
                        .join(
                            config
                                .data
                                .pronunciations
                                .as_ref()
                                .map_or("", |p| p.file.as_str())
                        )
                        .display()
                        .to_string())
            ),
            DataSource::Ts => format!(
                ".ts sequences ({})",
                config
                    .data
                    .dir
                    .as_deref()
                    .map_or("no directory".into(), |d| d.display().to_string())
            ),
        },
        config.batch_size,
        config.num_epochs
    )
}
