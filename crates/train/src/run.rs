//! One training run, from a config to a run directory, on any autodiff backend.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use burn::optim::Optimizer;
use burn::record::Recorder as _;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{Learner, LearnerSummary, SupervisedTraining};
use model::ModelRecorder;
use model::{RecurrentAutodiffBackend, RecurrentBackend, RecurrentClassifier};

use crate::artifacts::{RunDir, sha256_file, write_atomically};
use crate::clipping::ClippingConfig;
use crate::config::TrainConfig;
use crate::metrics::{DataFile, RunMetrics, TestMetrics};
use crate::optimizer::WithOptimizer;
use crate::recorder::{Halt, Recorder, Stopping};
use crate::schedule::ScheduleConfig;
use crate::selection::{KeepCheckpoints, ModelSelection};
use crate::source::{Loader, RunData, evaluate};
use crate::step::{Trainable, TrainableRecord};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Burn's terminal UI when stdout is a terminal, one line per epoch otherwise.
    Auto,
    /// One line per epoch.
    Lines,
}

/// What to run and where.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The effective config (saved as the run's `config.json`).
    pub config: TrainConfig,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Continue from the run directory's last checkpoint instead of starting afresh.
    pub resume: bool,
    /// Replace a finished or interrupted run in `run_dir` instead of refusing to.
    pub overwrite: bool,
    /// Name of the backend, recorded in `metrics.json`.
    pub backend: String,
    /// How progress is shown.
    pub display: Display,
    /// Raise it (from a signal handler, say) to stop the run after the current training batch;
    /// a stop asked during validation waits for that epoch's checkpoint.
    pub stop: Arc<AtomicBool>,
}

/// What a finished run leaves behind.
#[derive(Debug)]
pub struct RunOutcome<B: RecurrentBackend> {
    /// The trained classifier.
    pub model: RecurrentClassifier<B>,
    /// Everything measured (also in `metrics.json`).
    pub metrics: RunMetrics,
    /// Where it was written.
    pub run_dir: RunDir,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config has an unusable value.
    #[error("invalid config: {0}")]
    Config(String),
    /// MNIST could not be found.
    #[error(transparent)]
    Source(#[from] data::SourceError),
    /// MNIST could not be read.
    #[error(transparent)]
    Data(#[from] data::MnistError),
    /// A `.ts` dataset could not be found or read.
    #[error(transparent)]
    Sequences(#[from] data::TsError),
    /// The validation split is impossible.
    #[error(transparent)]
    Split(#[from] data::SplitError),
    /// The images, read in the configured order, do not fit the model.
    #[error(
        "{what} images are {rows}x{cols}; read as `{mode}` they give {steps} steps of {features} features, but model.input_size is {input_size}; set model.input_size to {features}"
    )]
    ImageSize {
        /// Which split.
        what: &'static str,
        /// Image rows.
        rows: usize,
        /// Image columns.
        cols: usize,
        /// The configured sequence mode.
        mode: &'static str,
        /// Time steps per image in that mode.
        steps: usize,
        /// Features per step in that mode.
        features: usize,
        /// The model's input size.
        input_size: usize,
    },
    /// A resumed run's pixel permutation is unreadable.
    #[error(transparent)]
    Permutation(#[from] data::PermutationError),
    /// A file or directory could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong, and what to do.
        message: String,
    },
    /// The run was asked to stop (SIGINT/SIGTERM) before its last epoch.
    #[error(
        "interrupted during epoch {epoch}; {kept} {dir}; continue with `train --resume --artifacts {dir}`",
        dir = run_dir.display(),
        kept = kept(*epoch)
    )]
    Interrupted {
        /// The run directory.
        run_dir: PathBuf,
        /// The epoch cut short.
        epoch: usize,
    },
    /// A training batch gave a NaN or infinite loss.
    #[error(
        "the training loss became {loss} at epoch {epoch}, batch {batch}: training stopped; {kept} {dir}. Lower optimizer.learning_rate (in {dir}/config.json to continue with `--resume`), or check data.mean and data.std",
        dir = run_dir.display(),
        kept = kept(*epoch)
    )]
    NonFiniteLoss {
        /// The run directory.
        run_dir: PathBuf,
        /// The epoch (1-based).
        epoch: usize,
        /// The batch within it (1-based).
        batch: usize,
        /// The loss value.
        loss: f64,
    },
    /// `--resume` cannot continue this directory.
    #[error("cannot resume {path}: {message}")]
    Resume {
        /// The run directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// `--finish` cannot finish this directory.
    #[error("cannot finish {path}: {message}")]
    Finish {
        /// The run directory.
        path: PathBuf,
        /// Why, and what to do.
        message: String,
    },
    /// A model checkpoint could not be loaded.
    #[error(transparent)]
    Record(#[from] model::RecordError),
}

/// What an interrupted run keeps, in words.
fn kept(epoch: usize) -> String {
    match epoch {
        0 | 1 => "no epoch was completed, nothing is checkpointed in".to_string(),
        2 => "epoch 1 is complete and checkpointed in".to_string(),
        e => format!("epochs 1-{} are complete and checkpointed in", e - 1),
    }
}

pub(crate) fn io_error(path: &Path, message: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Trains a classifier as `options` say, on `device`, writing the run directory as it goes. The data
/// is the config's (`data.source`: MNIST, or a `.ts` directory).
pub fn train<B: RecurrentAutodiffBackend>(
    options: RunOptions,
    device: B::Device,
) -> Result<RunOutcome<B::InnerBackend>, TrainError> {
    let mut config = options.config.clone();
    // Data problems are reported before the run directory is touched.
    let run_data = RunData::load(&mut config)?;
    fit_run::<B>(options, config, run_data, device)
}

/// Trains on labelled sequences held in memory rather than on files: `train` and `test` as
/// [`TsDataset`](data::TsDataset)s (build them with
/// [`TsDataset::from_sequences`](data::TsDataset::from_sequences)). Everything else is
/// [`train`]'s: `options.config.data` must say `"source": "ts"` (its `dir` is not read), the
/// validation split comes from `train`, the model's input size and class count from the data when
/// the config leaves them at 0, and the run directory is the same, `sequences.json` included.
pub fn train_sequences<B: RecurrentAutodiffBackend>(
    options: RunOptions,
    train: data::TsDataset,
    test: data::TsDataset,
    device: B::Device,
) -> Result<RunOutcome<B::InnerBackend>, TrainError> {
    let mut config = options.config.clone();
    if config.data.source != data::DataSource::Ts {
        return Err(TrainError::Config(
            "train_sequences needs a config with data.source \"ts\" (configs/sequences.json is one)"
                .into(),
        ));
    }
    let run_data = RunData::sequences(
        &mut config,
        train,
        test,
        Path::new("the training sequences"),
        Vec::new(),
    )?;
    fit_run::<B>(options, config, run_data, device)
}

fn fit_run<B: RecurrentAutodiffBackend>(
    options: RunOptions,
    config: TrainConfig,
    run_data: RunData,
    device: B::Device,
) -> Result<RunOutcome<B::InnerBackend>, TrainError> {
    config.validate().map_err(TrainError::Config)?;
    let config = &config;
    let run_dir = RunDir::new(&options.run_dir);
    let start_epoch = prepare_run_dir(&run_dir, config, &options)?;

    let metrics = Arc::new(Mutex::new(initial_metrics(
        &run_dir,
        &options,
        &run_data,
        start_epoch,
    )?));

    B::seed(&device, config.seed);
    let model = Trainable {
        model: config
            .model
            .init::<B>(&device)
            .map_err(|e| TrainError::Config(e.to_string()))?,
        max_grad_norm: config
            .gradient_clipping
            .as_ref()
            .and_then(ClippingConfig::max_norm),
    };
    // The loader keeps the last, partial batch.
    let batches_per_epoch = run_data.train_items().div_ceil(config.batch_size);
    let loaders = run_data.loaders::<B>(config, &run_dir, options.resume, start_epoch, &device)?;

    let halt = Arc::new(Mutex::new(None));
    let parts = LearnerParts {
        run_dir: run_dir.root.clone(),
        stop: options.stop.clone(),
        halt: halt.clone(),
        train_loader: loaders.train,
        valid_loader: loaders.valid,
        num_epochs: config.num_epochs,
        start_epoch,
        tui: options.display == Display::Auto && std::io::stdout().is_terminal(),
        metrics: metrics.clone(),
        metrics_path: run_dir.metrics(),
        schedule: config.lr_schedule.clone(),
        batches_per_epoch,
        selection: config.model_selection,
        on_disk: run_dir.checkpoint_epochs(),
    };

    let clipping = config
        .gradient_clipping
        .as_ref()
        .and_then(ClippingConfig::optimizer_clipping);
    let trained = config
        .optimizer
        .with_optimizer(clipping, Fit { parts, model });

    if let Some(halt) = halt.lock().expect("halt lock").take() {
        let run_dir = run_dir.root.clone();
        return Err(match halt {
            Halt::Requested { epoch } => TrainError::Interrupted { run_dir, epoch },
            Halt::NonFiniteLoss { epoch, batch, loss } => TrainError::NonFiniteLoss {
                run_dir,
                epoch,
                batch,
                loss,
            },
        });
    }
    // Burn's own summary is built here, not by the Learner: the Learner builds it while its event
    // thread may still be replacing `metrics.json`, and its directory scan panics on the vanished file.
    if let Ok(summary) = LearnerSummary::new(&run_dir.root, &["Accuracy", "Loss"]) {
        println!("{summary}");
    }
    let metrics = metrics.lock().expect("metrics lock").clone();
    conclude(
        &run_dir,
        config,
        metrics,
        trained,
        loaders.test.as_ref(),
        &device,
    )
}

/// Ends a run: the model of the epoch that `config.model_selection` chooses (`last`, the model in
/// hand, unless another epoch is chosen; then its checkpoint) becomes `model.mpk`, the test set (if
/// held apart) is evaluated once on it, and `metrics.json` records both.
fn conclude<B: RecurrentBackend>(
    run_dir: &RunDir,
    config: &TrainConfig,
    mut metrics: RunMetrics,
    last: RecurrentClassifier<B>,
    test: Option<&Loader<B>>,
    device: &B::Device,
) -> Result<RunOutcome<B>, TrainError> {
    let last_epoch = metrics.epochs.iter().map(|e| e.epoch).max();
    let chosen = config.model_selection.choose(&metrics.epochs);
    let model = match chosen {
        Some(epoch) if Some(epoch) != last_epoch => {
            if let Some(record) = metrics.epochs.iter().find(|e| e.epoch == epoch) {
                println!(
                    "model of epoch {epoch} ({}: validation accuracy {:.2}%, loss {:.4})",
                    config.model_selection.name(),
                    record.valid_accuracy,
                    record.valid_loss
                );
            }
            load_checkpoint::<B>(run_dir, config, epoch, device)?
        }
        _ => last,
    };
    save_model(run_dir, &model)?;
    metrics.model_epoch = chosen;
    if let Some(test) = test {
        let result = evaluate(&model, test);
        println!(
            "test: loss {:.4} accuracy {:.2}% ({} examples)",
            result.loss, result.accuracy, result.items
        );
        metrics.test = Some(TestMetrics {
            loss: result.loss,
            accuracy: result.accuracy,
            items: result.items,
        });
    }
    metrics
        .save(&run_dir.metrics())
        .map_err(|e| io_error(&run_dir.metrics(), e))?;
    Ok(RunOutcome {
        model,
        metrics,
        run_dir: run_dir.clone(),
    })
}

/// The classifier in the model checkpoint of `epoch`.
fn load_checkpoint<B: RecurrentBackend>(
    run_dir: &RunDir,
    config: &TrainConfig,
    epoch: usize,
    device: &B::Device,
) -> Result<RecurrentClassifier<B>, TrainError> {
    let path = run_dir.model_checkpoint(epoch);
    if !path.is_file() {
        return Err(TrainError::Finish {
            path: run_dir.root.clone(),
            message: format!(
                "`model_selection` \"{}\" chooses epoch {epoch}, but its checkpoint {} is gone; set `model_selection` in {} to \"last\" to take the last epoch's model instead",
                config.model_selection.name(),
                path.display(),
                run_dir.config().display()
            ),
        });
    }
    let record: TrainableRecord<B> =
        ModelRecorder::new()
            .load(path.clone(), device)
            .map_err(|e| model::RecordError::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
    Ok(config.model.from_record(record.model, &path, device)?)
}

/// Finishes a run before its last configured epoch (one stopped by a signal, or on purpose): the
/// epoch that `config.model_selection` chooses among the completed ones becomes `model.mpk`, and the
/// test set, when held apart, is evaluated once on it, as at the end of [`train`]. `config` is the
/// run's own `config.json` (its `data.dir` may be changed to where the data is now). A run that
/// already has a model or a test figure is refused: a run's test set is evaluated once.
pub fn finish<B: RecurrentAutodiffBackend>(
    config: TrainConfig,
    run_dir: impl Into<PathBuf>,
    device: B::Device,
) -> Result<RunOutcome<B::InnerBackend>, TrainError> {
    let run_dir = RunDir::new(run_dir);
    let refuse = |message: String| TrainError::Finish {
        path: run_dir.root.clone(),
        message,
    };
    let metrics = RunMetrics::load(&run_dir.metrics()).map_err(&refuse)?;
    if let Some(test) = &metrics.test {
        return Err(refuse(format!(
            "its test set was already evaluated ({:.2}%, model of epoch {}); a run's test set is evaluated once",
            test.accuracy,
            metrics
                .model_epoch
                .map_or("last".to_string(), |e| e.to_string())
        )));
    }
    if run_dir.model_file().exists() {
        return Err(refuse(format!(
            "it is finished already: {} exists",
            run_dir.model_file().display()
        )));
    }
    let Some(last) = run_dir.last_checkpoint().or_else(|| {
        metrics
            .epochs
            .iter()
            .map(|e| e.epoch)
            .max()
            .filter(|&e| run_dir.model_checkpoint(e).is_file())
    }) else {
        return Err(refuse(format!(
            "no checkpoint under {}; there is no completed epoch to finish with",
            run_dir.checkpoints().display()
        )));
    };
    let mut config = config;
    let run_data = RunData::load(&mut config)?;
    config.validate().map_err(TrainError::Config)?;
    let loaders = run_data.loaders::<B>(&config, &run_dir, true, last, &device)?;
    // Only epochs that are complete and checkpointed count: `metrics.json` may list an epoch past
    // the last checkpoint if the run stopped while the checkpoint was written.
    let mut metrics = metrics;
    metrics.epochs.retain(|e| e.epoch <= last);
    let last_model = load_checkpoint::<B::InnerBackend>(&run_dir, &config, last, &device)?;
    conclude(
        &run_dir,
        &config,
        metrics,
        last_model,
        loaders.test.as_ref(),
        &device,
    )
}

/// What Burn's Learner needs besides the model and optimizer.
struct LearnerParts<B: RecurrentAutodiffBackend> {
    run_dir: PathBuf,
    stop: Arc<AtomicBool>,
    halt: Arc<Mutex<Option<Halt>>>,
    train_loader: Loader<B>,
    valid_loader: Loader<B::InnerBackend>,
    num_epochs: usize,
    start_epoch: usize,
    tui: bool,
    metrics: Arc<Mutex<RunMetrics>>,
    metrics_path: PathBuf,
    schedule: ScheduleConfig,
    batches_per_epoch: usize,
    selection: ModelSelection,
    on_disk: Vec<usize>,
}

/// The random draws of training (dropout masks) of every epoch after the first start from a seed of
/// their own, so that a resumed run draws what the uninterrupted one drew; the first continues from
/// the initialization's. Run by the training loader as an epoch's iteration begins, on the training
/// thread: Burn's renderer, which sees the end of an epoch, runs on a thread of its own and would
/// reseed at some point during the next epoch's first batches.
pub(crate) fn reseed<B: RecurrentBackend>(
    device: B::Device,
    seed: u64,
) -> impl Fn(usize) + Send + Sync + 'static {
    move |epoch| {
        if epoch > 1 {
            B::seed(&device, epoch_seed(seed, epoch));
        }
    }
}

/// The seed of epoch `epoch`'s random draws: mixed differently from the shuffle's, so that the two
/// streams are unrelated.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Burn's Learner over the model, to be run with the config's optimizer.
struct Fit<B: RecurrentAutodiffBackend> {
    parts: LearnerParts<B>,
    model: Trainable<B>,
}

impl<B: RecurrentAutodiffBackend> WithOptimizer<Trainable<B>, B> for Fit<B> {
    type Output = RecurrentClassifier<B::InnerBackend>;

    fn run<O: Optimizer<Trainable<B>, B> + 'static>(self, optimizer: O, lr: f64) -> Self::Output {
        fit(self.parts, self.model, optimizer, lr)
    }
}

/// Runs Burn's Learner with one concrete optimizer type.
fn fit<B, O>(
    parts: LearnerParts<B>,
    model: Trainable<B>,
    optim: O,
    lr: f64,
) -> RecurrentClassifier<B::InnerBackend>
where
    B: RecurrentAutodiffBackend,
    O: Optimizer<Trainable<B>, B> + 'static,
{
    let mut training =
        SupervisedTraining::new(&parts.run_dir, parts.train_loader, parts.valid_loader)
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .with_file_checkpointer(ModelRecorder::new())
            .with_checkpointing_strategy(KeepCheckpoints::new(
                parts.selection,
                parts.metrics.clone(),
                parts.on_disk,
            ))
            .num_epochs(parts.num_epochs);
    if parts.start_epoch > 0 {
        training = training.checkpoint(parts.start_epoch);
    }
    let tui = parts.tui.then(|| {
        Box::new(TuiMetricsRendererWrapper::new(
            training.interrupter(),
            (parts.start_epoch > 0).then_some(parts.start_epoch),
        )) as Box<dyn MetricsRenderer>
    });
    let stopping = Stopping {
        interrupter: training.interrupter(),
        requested: parts.stop,
        halt: parts.halt,
        start_epoch: parts.start_epoch,
    };
    let schedule = parts
        .schedule
        .schedule(lr, parts.batches_per_epoch, parts.num_epochs);
    let training = training.renderer(Recorder::new(
        parts.metrics,
        parts.metrics_path,
        tui,
        stopping,
        schedule.clone(),
    ));
    training
        .launch(Learner::new(model, optim, schedule))
        .model
        .model
}

/// Checks and creates the run directory. Returns the epoch to resume after (0 for a fresh run).
fn prepare_run_dir(
    run_dir: &RunDir,
    config: &TrainConfig,
    options: &RunOptions,
) -> Result<usize, TrainError> {
    let root = &run_dir.root;
    if options.resume {
        let Some(epoch) = run_dir.last_checkpoint() else {
            return Err(TrainError::Resume {
                path: root.clone(),
                message: format!(
                    "no complete checkpoint under {}; start a fresh run instead",
                    run_dir.checkpoints().display()
                ),
            });
        };
        if epoch >= config.num_epochs {
            return Err(TrainError::Resume {
                path: root.clone(),
                message: format!(
                    "the run already completed epoch {epoch} of {}; raise --epochs to train further",
                    config.num_epochs
                ),
            });
        }
        write_config(run_dir, config)?;
        return Ok(epoch);
    }
    let occupied = run_dir.config().exists() || run_dir.checkpoints().exists();
    if occupied && !options.overwrite {
        return Err(io_error(
            root,
            "already holds a run; pass --resume to continue it, --overwrite to replace it, or --artifacts DIR to use another directory",
        ));
    }
    if occupied {
        for path in run_dir.outputs() {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else if path.exists() {
                std::fs::remove_file(&path)
            } else {
                Ok(())
            };
            removed.map_err(|e| {
                io_error(
                    &path,
                    format!("cannot remove the replaced run's file ({e})"),
                )
            })?;
        }
    }
    if root.exists() && !root.is_dir() {
        return Err(io_error(
            root,
            "is a file, not a directory; choose another --artifacts DIR",
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| {
        io_error(
            root,
            format!("cannot create the run directory ({e}); choose a writable --artifacts DIR"),
        )
    })?;
    write_config(run_dir, config)?;
    Ok(0)
}

fn write_config(run_dir: &RunDir, config: &TrainConfig) -> Result<(), TrainError> {
    let path = run_dir.config();
    write_atomically(&path, config.to_string().as_bytes()).map_err(|e| {
        io_error(
            &path,
            format!("cannot write the config ({e}); choose a writable --artifacts DIR"),
        )
    })
}

fn initial_metrics(
    run_dir: &RunDir,
    options: &RunOptions,
    run_data: &RunData,
    start_epoch: usize,
) -> Result<RunMetrics, TrainError> {
    let data_files = run_data
        .files
        .iter()
        .map(|path| {
            Ok(DataFile {
                path: path.clone(),
                sha256: sha256_file(path).map_err(|e| io_error(path, e))?,
            })
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    let mut epochs = Vec::new();
    if start_epoch > 0 {
        let previous =
            RunMetrics::load(&run_dir.metrics()).map_err(|message| TrainError::Resume {
                path: run_dir.root.clone(),
                message,
            })?;
        epochs = previous.epochs;
        epochs.retain(|e| e.epoch <= start_epoch);
    }
    Ok(RunMetrics {
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: options.backend.clone(),
        validation: run_data.validation.clone(),
        train_items: run_data.train_items(),
        valid_items: run_data.valid_items(),
        data_files,
        epochs,
        model_epoch: None,
        test: None,
    })
}

/// Saves the final model under its final name only once it is completely written.
fn save_model<B: RecurrentBackend>(
    run_dir: &RunDir,
    model: &RecurrentClassifier<B>,
) -> Result<(), TrainError> {
    let tmp_stem = run_dir.root.join(".model-partial");
    let tmp_file = tmp_stem.with_extension("mpk");
    model.save(&tmp_stem).map_err(|e| io_error(&tmp_file, e))?;
    std::fs::rename(&tmp_file, run_dir.model_file()).map_err(|e| io_error(&run_dir.model_file(), e))
}
