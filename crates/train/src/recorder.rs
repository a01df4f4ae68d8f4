//! Follows Burn's metric events to keep per-epoch numbers, print them, and save `metrics.json`
//! after every epoch. It also stops the Learner on a non-finite loss or when asked to (a signal), and
//! in a terminal drives Burn's TUI.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::{Interrupter, LearnerSummary};

use crate::metrics::{EpochMetrics, RunMetrics};
use crate::schedule::Schedule;

/// Running weighted mean of one metric over an epoch.
#[derive(Default, Clone, Copy)]
struct Mean {
    sum: f64,
    weight: f64,
}

impl Mean {
    fn add(&mut self, entry: &NumericEntry) {
        let (value, weight) = match entry {
            NumericEntry::Value(v) => (*v, 1.0),
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => (*aggregated_value, *count as f64),
        };
        self.sum += value * weight;
        self.weight += weight;
    }

    fn get(&self) -> f64 {
        if self.weight > 0.0 {
            self.sum / self.weight
        } else {
            f64::NAN
        }
    }
}

/// One phase (train or valid) of the current epoch.
#[derive(Default)]
struct Phase {
    means: HashMap<String, Mean>,
    items: usize,
}

/// Why a run stopped before its last epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    /// The stop flag was raised (SIGINT or SIGTERM in the binary).
    Requested {
        /// The epoch that was cut short (1-based); the ones before it are complete.
        epoch: usize,
    },
    /// A training batch produced a NaN or infinite loss.
    NonFiniteLoss {
        /// The epoch (1-based).
        epoch: usize,
        /// The batch within the epoch (1-based).
        batch: usize,
        /// The loss value.
        loss: f64,
    },
}

/// How the recorder stops the Learner.
pub struct Stopping {
    /// Burn's handle to stop training after the current batch.
    pub interrupter: Interrupter,
    /// Raised by whoever wants the run to stop (a signal handler); checked at every training batch,
    /// so that a stop asked during validation takes effect once that epoch is complete and saved.
    pub requested: Arc<AtomicBool>,
    /// Where the reason is left for the caller.
    pub halt: Arc<Mutex<Option<Halt>>>,
    /// Epochs completed before this session (a resumed run's starting point).
    pub start_epoch: usize,
}

/// The renderer handed to Burn's Learner.
pub struct Recorder {
    stopping: Stopping,
    completed_epochs: usize,
    batches: usize,
    tui: Option<Box<dyn MetricsRenderer>>,
    print_lines: bool,
    names: HashMap<MetricId, String>,
    train: Phase,
    valid: Phase,
    epoch_started: Instant,
    train_seconds: Option<f64>,
    metrics: Arc<Mutex<RunMetrics>>,
    metrics_path: PathBuf,
    schedule: Schedule,
    /// Samples per item of the training loader: 1, or a text window's predicted characters.
    samples_per_item: f64,
}

impl Recorder {
    /// Records into `metrics` (saved to `metrics_path` after each epoch), with each epoch's learning
    /// rate from `schedule`. With `tui`, Burn's terminal UI shows progress; otherwise one plain line
    /// per epoch is printed.
    pub fn new(
        metrics: Arc<Mutex<RunMetrics>>,
        metrics_path: PathBuf,
        tui: Option<Box<dyn MetricsRenderer>>,
        stopping: Stopping,
        schedule: Schedule,
    ) -> Self {
        Self {
            completed_epochs: stopping.start_epoch,
            stopping,
            batches: 0,
            print_lines: tui.is_none(),
            tui,
            names: HashMap::new(),
            train: Phase::default(),
            valid: Phase::default(),
            epoch_started: Instant::now(),
            train_seconds: None,
            metrics,
            metrics_path,
            schedule,
            samples_per_item: 1.0,
        }
    }

    /// Counts `samples` samples per item of the training loader (a text window's characters) in
    /// `train_samples_per_second`.
    pub fn with_samples_per_item(mut self, samples: f64) -> Self {
        self.samples_per_item = samples;
        self
    }

    fn record(phase: &mut Phase, names: &HashMap<MetricId, String>, state: &MetricState) {
        if let MetricState::Numeric(entry, numeric) = state
            && let Some(name) = names.get(&entry.metric_id)
        {
            phase.means.entry(name.clone()).or_default().add(numeric);
        }
    }

    fn finish_epoch(&mut self, epoch: usize, num_epochs: usize) {
        let wall_seconds = self.epoch_started.elapsed().as_secs_f64();
        let train_seconds = self.train_seconds.take().unwrap_or(wall_seconds);
        let get = |phase: &Phase, name: &str| phase.means.get(name).map_or(f64::NAN, Mean::get);
        let record = EpochMetrics {
            epoch,
            train_loss: get(&self.train, "Loss"),
            train_accuracy: get(&self.train, "Accuracy"),
            valid_loss: get(&self.valid, "Loss"),
            valid_accuracy: get(&self.valid, "Accuracy"),
            train_seconds,
            wall_seconds,
            train_samples_per_second: self.train.items as f64 * self.samples_per_item
                / train_seconds,
            learning_rate: Some(self.schedule.at_epoch(epoch)),
        };
        if self.print_lines {
            println!("{}", record.line(num_epochs));
        }
        let mut metrics = self.metrics.lock().expect("metrics lock");
        metrics.push_epoch(record);
        if let Err(e) = metrics.save(&self.metrics_path) {
            eprintln!("warning: {e}");
        }
        drop(metrics);
        self.completed_epochs = epoch;
        self.batches = 0;
        self.train = Phase::default();
        self.valid = Phase::default();
        self.epoch_started = Instant::now();
    }
}

impl Recorder {
    /// Checks one training metric update: a non-finite loss, or a pending stop request, halts the run.
    fn watch(&mut self, state: &MetricState) {
        let MetricState::Numeric(entry, numeric) = state else {
            return;
        };
        if self.names.get(&entry.metric_id).map(String::as_str) != Some("Loss") {
            return;
        }
        self.batches += 1;
        let epoch = self.completed_epochs + 1;
        let loss = match numeric {
            NumericEntry::Value(v) => *v,
            NumericEntry::Aggregated {
                aggregated_value, ..
            } => *aggregated_value,
        };
        let halt = if !loss.is_finite() {
            Halt::NonFiniteLoss {
                epoch,
                batch: self.batches,
                loss,
            }
        } else if self.stopping.requested.load(Ordering::SeqCst) {
            Halt::Requested { epoch }
        } else {
            return;
        };
        let mut slot = self.stopping.halt.lock().expect("halt lock");
        if slot.is_none() {
            *slot = Some(halt);
            self.stopping.interrupter.stop(Some("run halted"));
        }
    }
}

impl MetricsRendererTraining for Recorder {
    fn update_train(&mut self, state: MetricState) {
        self.watch(&state);
        Self::record(&mut self.train, &self.names, &state);
        if let Some(tui) = &mut self.tui {
            tui.update_train(state);
        }
    }

    fn update_valid(&mut self, state: MetricState) {
        Self::record(&mut self.valid, &self.names, &state);
        if let Some(tui) = &mut self.tui {
            tui.update_valid(state);
        }
    }

    fn render_train(&mut self, item: TrainingProgress, indicators: Vec<ProgressType>) {
        if let Some(progress) = &item.progress {
            self.train.items = progress.items_processed;
        }
        if let Some(tui) = &mut self.tui {
            tui.render_train(item, indicators);
        }
    }

    fn render_valid(&mut self, item: TrainingProgress, indicators: Vec<ProgressType>) {
        if self.train_seconds.is_none() {
            self.train_seconds = Some(self.epoch_started.elapsed().as_secs_f64());
        }
        let done = item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed >= p.items_total);
        let (epoch, num_epochs) = (
            item.global_progress.items_processed,
            item.global_progress.items_total,
        );
        if let Some(tui) = &mut self.tui {
            tui.render_valid(item, indicators);
        }
        if done {
            self.finish_epoch(epoch, num_epochs);
        }
    }

    fn on_train_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        match &mut self.tui {
            Some(tui) => tui.on_train_end(summary),
            // The summary is printed by `run` once the Learner has returned (it passes none).
            None => Ok(()),
        }
    }
}

impl MetricsRendererEvaluation for Recorder {
    fn update_test(&mut self, name: EvaluationName, state: MetricState) {
        if let Some(tui) = &mut self.tui {
            tui.update_test(name, state);
        }
    }

    fn render_test(&mut self, item: EvaluationProgress, indicators: Vec<ProgressType>) {
        if let Some(tui) = &mut self.tui {
            tui.render_test(item, indicators);
        }
    }
}

impl MetricsRenderer for Recorder {
    fn manual_close(&mut self) {
        if let Some(tui) = &mut self.tui {
            tui.manual_close();
        }
    }

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.clone());
        if let Some(tui) = &mut self.tui {
            tui.register_metric(definition);
        }
    }
}
