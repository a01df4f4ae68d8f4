//! Using trained recurrent models from other Rust code: open a run directory written by `train`,
//! load its model (checked against its config), evaluate it, generate text from a character
//! language model ([`text`]), transcribe words with a CTC run ([`transcription`]), classify `.ts` sequences with the run's
//! class names and normalization ([`predict_sequences`]), classify pictures of digits (also
//! step by step, and over HTTP with a draw-a-digit page: [`serve`]), and import PyTorch-trained weights.
//!
//! Depends on the `model` and `data` crates only: a run directory is all it needs from training.

mod import;
mod predict;
pub mod preprocess;
pub mod report;
mod run;
pub mod serve;
pub mod text;
pub mod transcription;

use std::path::PathBuf;

pub use import::import_pytorch;
pub use predict::{Prediction, Reading, predict, predict_sequences, read_steps};
pub use run::Run;

/// Why inference could not proceed. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The directory is not a run directory.
    #[error("{dir} is not a run directory: {message}")]
    NotARun {
        /// The directory given.
        dir: PathBuf,
        /// What is missing.
        message: String,
    },
    /// `config.json` is unreadable or invalid.
    #[error("{path}: {message}")]
    RunConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model record is missing, corrupt or of another architecture.
    #[error(transparent)]
    Record(#[from] model::RecordError),
    /// A PyTorch file could not be imported.
    #[error(transparent)]
    Import(#[from] model::pytorch::ImportError),
    /// A picture could not be read.
    #[error("cannot read image {path}: {message}; give a PNG or JPEG file")]
    Image {
        /// The picture.
        path: PathBuf,
        /// The decoder's complaint.
        message: String,
    },
    /// An output could not be written.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// MNIST could not be found.
    #[error(transparent)]
    Source(#[from] data::SourceError),
    /// MNIST could not be read.
    #[error(transparent)]
    Data(#[from] data::MnistError),
    /// The run's pixel permutation is unreadable.
    #[error(transparent)]
    Permutation(#[from] data::PermutationError),
    /// A `.ts` file or dataset directory could not be read.
    #[error(transparent)]
    Sequences(#[from] data::TsError),
    /// A text, or a run's vocabulary, could not be read or used.
    #[error(transparent)]
    Text(#[from] data::TextError),
    /// A pronouncing dictionary could not be read.
    #[error(transparent)]
    Pronunciations(#[from] data::PronunciationError),
    /// Words that cannot be transcribed.
    #[error(transparent)]
    Transcribe(#[from] transcription::TranscribeError),
}
