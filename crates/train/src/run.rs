//! One training run, from a config to a run directory, on any autodiff backend.

use burn::tensor::backend::{AutodiffBackend, Backend};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use burn::optim::Optimizer;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::MetricsRenderer;
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::{Learner, LearnerSummary, SupervisedTraining};
use model::ModelRecorder;
use model::RecurrentClassifier;

use crate::artifacts::{RunDir, sha256_file};
use crate::clipping::ClippingConfig;
use crate::config::TrainConfig;
use crate::error::{TrainError, io_error};
use crate::metrics::{DataFile, RunMetrics, TestMetrics};
use crate::optimizer::WithOptimizer;
use crate::recorder::{Halt, Recorder, Stopping};
use crate::run_dir;
use crate::schedule::ScheduleConfig;
use crate::selection::{KeepCheckpoints, ModelSelection};
use crate::source::RunData;
use crate::step::Trainable;
use crate::task::{Loader, Task, evaluate};

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
pub struct RunOutcome<B: Backend> {
    /// The trained classifier.
    pub model: RecurrentClassifier<B>,
    /// Everything measured (also in `metrics.json`).
    pub metrics: RunMetrics,
    /// Where it was written.
    pub run_dir: RunDir,
}

/// Trains a classifier as `options` say, on `device`, writing the run directory as it goes. The data
/// is the config's (`data.source`: MNIST, or a `.ts` directory).
pub fn train<B: AutodiffBackend>(
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
pub fn train_sequences<B: AutodiffBackend>(
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

fn fit_run<B: AutodiffBackend>(
    options: RunOptions,
    mut config: TrainConfig,
    run_data: RunData,
    device: B::Device,
) -> Result<RunOutcome<B::InnerBackend>, TrainError> {
    config.validate().map_err(TrainError::Config)?;
    // A new run takes at least `min_steps` steps; a resumed one keeps its saved epoch count.
    if let (false, Some(min_steps)) = (options.resume, config.min_steps) {
        let batches = run_data.batches_per_epoch(&config).max(1);
        config.num_epochs = config.num_epochs.max(min_steps.div_ceil(batches));
    }
    let config = &config;
    let run_dir = RunDir::new(&options.run_dir);
    let start_epoch = run_dir::prepare(&run_dir, config, options.resume, options.overwrite)?;

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
    let batches_per_epoch = run_data.batches_per_epoch(config);
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
        // A text loader's item is a window of every stream: its characters are the samples.
        samples_per_item: if config.data.source == data::DataSource::Text {
            run_data.train_items() as f64 / batches_per_epoch.max(1) as f64
        } else {
            1.0
        },
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
fn conclude<B: Backend>(
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
            run_dir::load_checkpoint::<B>(run_dir, config, epoch, device)?
        }
        _ => last,
    };
    run_dir::save_model(run_dir, &model)?;
    metrics.model_epoch = chosen;
    if let Some(test) = test {
        let result = evaluate(&model, test);
        println!("{}", Task::of(config).test_line(&result));
        metrics.test = Some(TestMetrics {
            loss: result.loss,
            accuracy: result.accuracy,
            items: result.items,
            token_error_rate: result.token_error_rate,
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

/// Finishes a run before its last configured epoch (one stopped by a signal, or on purpose): the
/// epoch that `config.model_selection` chooses among the completed ones becomes `model.mpk`, and the
/// test set, when held apart, is evaluated once on it, as at the end of [`train`]. `config` is the
/// run's own `config.json` (its `data.dir` may be changed to where the data is now). A run that
/// already has a model or a test figure is refused: a run's test set is evaluated once.
pub fn finish<B: AutodiffBackend>(
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
    let last_model = run_dir::load_checkpoint::<B::InnerBackend>(&run_dir, &config, last, &device)?;
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
struct LearnerParts<B: AutodiffBackend> {
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
    samples_per_item: f64,
}

/// Burn's Learner over the model, to be run with the config's optimizer.
struct Fit<B: AutodiffBackend> {
    parts: LearnerParts<B>,
    model: Trainable<B>,
}

impl<B: AutodiffBackend> WithOptimizer<Trainable<B>, B> for Fit<B> {
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
    B: AutodiffBackend,
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
    let training = training.renderer(
        Recorder::new(
            parts.metrics,
            parts.metrics_path,
            tui,
            stopping,
            schedule.clone(),
        )
        .with_samples_per_item(parts.samples_per_item),
    );
    training
        .launch(Learner::new(model, optim, schedule))
        .model
        .model
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
