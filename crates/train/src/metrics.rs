//! `metrics.json`: what a run measured, epoch by epoch, and what it ran on.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::artifacts::write_atomically;

/// A number JSON may hold as `null`: serde_json writes a non-finite one (a diverged or infinite loss)
/// that way, and it reads back as NaN, so that such a run can still be resumed and reported.
fn number_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Numbers of one epoch. Losses are means over batches; accuracies are percentages. A non-finite
/// value is written as `null` and read back as NaN (never chosen by model selection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training cross-entropy.
    #[serde(deserialize_with = "number_or_null")]
    pub train_loss: f64,
    /// Training accuracy, %.
    #[serde(deserialize_with = "number_or_null")]
    pub train_accuracy: f64,
    /// Validation cross-entropy (the test set when no validation images are held out).
    #[serde(deserialize_with = "number_or_null")]
    pub valid_loss: f64,
    /// Validation accuracy, %.
    #[serde(deserialize_with = "number_or_null")]
    pub valid_accuracy: f64,
    /// Seconds from the start of the epoch to the first validation batch: the training pass, plus one
    /// validation batch (Burn reports no boundary between the two).
    pub train_seconds: f64,
    /// Seconds for the whole epoch: training, validation and checkpoint.
    pub wall_seconds: f64,
    /// Training samples divided by `train_seconds`.
    pub train_samples_per_second: f64,
    /// The learning rate of the epoch's first batch, from `lr_schedule` (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
}

impl EpochMetrics {
    /// The one line printed per epoch when no TUI runs.
    pub fn line(&self, num_epochs: usize) -> String {
        format!(
            "epoch {}/{num_epochs}  train loss {:.4} acc {:.2}%  valid loss {:.4} acc {:.2}%  {:.1}s ({:.0} samples/s){}",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.valid_loss,
            self.valid_accuracy,
            self.wall_seconds,
            self.train_samples_per_second,
            self.learning_rate
                .map(|rate| format!("  lr {rate:.3e}"))
                .unwrap_or_default()
        )
    }
}

/// A data file and its SHA-256, so that a run says exactly what it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Where it was read.
    pub path: PathBuf,
    /// Hex SHA-256 of the file as stored (compressed if it is gzip).
    pub sha256: String,
}

/// The test-set evaluation of the run's model (of epoch `model_epoch`), made once, when validation
/// used held-out training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Mean test cross-entropy.
    pub loss: f64,
    /// Test accuracy, %.
    pub accuracy: f64,
    /// Test images (characters of a text, words of a dictionary).
    pub items: usize,
    /// A transcriber's phoneme error rate, % (its word error rate is 100 − `accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_error_rate: Option<f64>,
}

/// The content of `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// Version of the `train` crate that ran.
    pub crate_version: String,
    /// Backend the run used.
    pub backend: String,
    /// What the validation columns measure.
    pub validation: String,
    /// Training images per epoch.
    pub train_items: usize,
    /// Validation images.
    pub valid_items: usize,
    /// The MNIST files read.
    pub data_files: Vec<DataFile>,
    /// One entry per completed epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose model is the run's `model.mpk` (and was tested), chosen by the config's
    /// `model_selection`; absent in files written before the choice existed (the last epoch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_epoch: Option<usize>,
    /// Test-set numbers of the final model, when the test set was not the validation set.
    pub test: Option<TestMetrics>,
}

impl RunMetrics {
    /// Adds or replaces the entry of `record.epoch`.
    pub fn push_epoch(&mut self, record: EpochMetrics) {
        self.epochs.retain(|e| e.epoch < record.epoch);
        self.epochs.push(record);
    }

    /// Reads a `metrics.json`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a valid metrics file: {e}", path.display()))
    }

    /// Writes it atomically (a crash leaves the previous version, never half a file).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("metrics serialize");
        write_atomically(path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}
