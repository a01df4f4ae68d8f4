//! Why a training run could not start or finish: one error type, each message naming the file or
//! field and what to do.

use std::path::{Path, PathBuf};

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
    /// A text could not be read or used.
    #[error(transparent)]
    Text(#[from] data::TextError),
    /// A pronouncing dictionary could not be read.
    #[error(transparent)]
    Pronunciations(#[from] data::PronunciationError),
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
