//! Data for sequence models: MNIST (IDX reading, locating the files and downloading them, verified,
//! when they are nowhere), a reproducible train/validation split, a Burn
//! [`Batcher`](burn::data::dataloader::batcher::Batcher) that normalizes images into sequences (rows,
//! pixels, or permuted pixels: [`SequenceMode`]), and the `.ts` files of the time-series classification
//! archive ([`TsDataset`]), and plain text for character language models ([`Streams`] of a
//! [`Vocabulary`]), and pronouncing dictionaries for transcription ([`read_cmudict`]).
//!
//! This crate knows nothing of models.

mod batcher;
mod config;
mod download;
mod files;
mod loader;
mod mnist;
mod pronunciation;
mod sequence;

/// The IDX file reader (the `idx` crate).
pub use idx;
mod source;
mod split;
mod text;
mod transcription;
mod ts;
mod ts_data;

pub use batcher::{MnistBatcher, SequenceBatch};
pub use config::{DataConfig, DataConfigError, DataSource, TextConfig};
pub use download::{
    DEFAULT_MIRRORS, DownloadError, Event, LineProgress, MNIST_MIRROR_ENV, Mirrors, Progress,
    Silent, format_size,
};
pub use files::{DIGESTS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
pub use loader::EpochLoader;
pub use mnist::{MnistDataset, MnistError, MnistItem};
pub use pronunciation::{
    Part, Pronunciation, PronunciationError, StepLayout, Stress, parse_cmudict, parse_pairs,
    part_of, read_cmudict, read_pairs, steps_needed, token_vocabulary,
};
pub use sequence::{Permutation, PermutationError, SequenceLayout, SequenceMode};
pub use source::{MNIST_DIR_ENV, MnistFiles, SourceError, Split};
pub use split::{SplitError, split_indices, train_validation_split};
pub use text::{
    IGNORE_TARGET, StateCarry, Streams, TINY_SHAKESPEARE_SHA256, TINY_SHAKESPEARE_URL, TextBatch,
    TextBatcher, TextError, TextFetchError, TextParts, TextSplit, TextWindow, Vocabulary,
    fetch_text, read_text, text_cache_dir,
};
pub use transcription::{
    DictionaryFormat, PronunciationConfig, Symbols, TranscriptionBatch, TranscriptionBatcher,
    TranscriptionItem, TranscriptionParts, TranscriptionSet,
};
pub use ts::{MissingValues, TsDataset, TsError, TsExample};
pub use ts_data::{SequenceInfo, TsBatcher, TsFiles};
