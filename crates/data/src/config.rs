use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::config::Config;

use crate::{
    MissingValues, Permutation, PermutationError, PronunciationConfig, SequenceLayout, SequenceMode,
};

/// Where the sequences come from: MNIST images, or a directory of `.ts` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// MNIST, each image read as a sequence (`sequence`), normalized with `mean` and `std`.
    #[default]
    Mnist,
    /// A directory (`dir`) holding one `*_TRAIN.ts` and one `*_TEST.ts` file of the time-series
    /// classification archive: sequences of any length and channel count, normalized per channel
    /// with statistics of the training examples (`mean`, `std` and `sequence` do not apply).
    Ts,
    /// A plain UTF-8 text file (`text.file` in `dir`) for a character language model: the model
    /// reads characters and predicts the next one at every step (see [`TextConfig`]).
    Text,
    /// A pronouncing dictionary (`pronunciations.file` in `dir`) for transcription with CTC: the
    /// model reads a word's letters and emits its phonemes (see [`PronunciationConfig`]).
    Pronunciations,
}

impl DataSource {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            DataSource::Mnist => "mnist",
            DataSource::Ts => "ts",
            DataSource::Text => "text",
            DataSource::Pronunciations => "pronunciations",
        }
    }
}

/// The fields only MNIST reads: how an image is normalized and read as a sequence.
const IMAGE_FIELDS: [&str; 4] = ["mean", "std", "sequence", "permutation_seed"];
/// The held-out split and the limits, which a text's and a dictionary's own split rules replace.
const SPLIT_FIELDS: [&str; 4] = ["validation_size", "split_seed", "train_limit", "eval_limit"];

/// Where the data is, and for MNIST how it is normalized and read as a sequence; how the training
/// set is split. Saved as part of a run's config.
#[derive(Config, Debug, PartialEq)]
pub struct DataConfig {
    /// What the data is: `mnist` (the default) or `ts`.
    #[config(default = "DataSource::Mnist")]
    pub source: DataSource,
    /// MNIST: the directory holding the four IDX files; `null` searches `MNIST_DIR`, then the cache
    /// (where `train` downloads MNIST when it is nowhere). `ts`: the dataset directory (required,
    /// here or as `--data-dir`).
    pub dir: Option<PathBuf>,
    /// Mean subtracted after scaling pixels to [0, 1] (MNIST's: 0.1307).
    #[config(default = 0.1307)]
    pub mean: f64,
    /// Standard deviation divided by after subtracting the mean (MNIST's: 0.3081).
    #[config(default = 0.3081)]
    pub std: f64,
    /// How an image becomes a sequence: `rows` (28 steps × 28 pixels), `pixels` (784 steps × 1) or
    /// `permuted_pixels` (784 steps in a fixed random order).
    #[config(default = "SequenceMode::Rows")]
    pub sequence: SequenceMode,
    /// Seed of the pixel permutation of `permuted_pixels`; the run saves the permutation itself too.
    #[config(default = 0)]
    pub permutation_seed: u64,
    /// Training examples held out for validation; 0 validates on the test set, as the reference program does.
    #[config(default = 0)]
    pub validation_size: usize,
    /// `ts`: the share of the training examples held out for validation (rounded, at least one, at
    /// least one left to train on), instead of a count: one setting for datasets of any size.
    #[config(default = "None")]
    pub validation_fraction: Option<f64>,
    /// Seed of the shuffle that picks the held-out validation images.
    #[config(default = 0)]
    pub split_seed: u64,
    /// Use only the first N training images (after the split); `null` uses all. For quick checks.
    pub train_limit: Option<usize>,
    /// Use only the first N evaluation images; `null` uses all.
    pub eval_limit: Option<usize>,
    /// The text source's settings (`source: "text"` only; `null` otherwise).
    #[config(default = "None")]
    pub text: Option<TextConfig>,
    /// The pronouncing dictionary's settings (`source: "pronunciations"` only; `null` otherwise).
    #[config(default = "None")]
    pub pronunciations: Option<PronunciationConfig>,
    /// `ts`: what to do with missing values (`?`, `NaN`): `refuse` the file (the default), or `fill`
    /// each gap with the channel's value before it (a leading gap with the first value after it).
    #[config(default = "MissingValues::Refuse")]
    pub missing: MissingValues,
}

/// How a text becomes training windows (`data.source: "text"`).
#[derive(Config, Debug, PartialEq)]
pub struct TextConfig {
    /// The text file's name inside `data.dir` (downloaded there, or into the cache, when it is
    /// nowhere and the run names Tiny Shakespeare's).
    #[config(default = "\"input.txt\".to_string()")]
    pub file: String,
    /// Characters per training window: the truncated back-propagation length.
    #[config(default = 128)]
    pub window: usize,
    /// The share at the end of the text that gives the reported figure (nanoGPT: 0.1).
    #[config(default = 0.1)]
    pub test_fraction: f64,
    /// Characters at the end of the training part set apart for validation (model selection).
    #[config(default = 50000)]
    pub validation_chars: usize,
}

/// A [`DataConfig`] value that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("data config field `{field}` is {value}: {reason}")]
pub struct DataConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Its value.
    pub value: String,
    /// What a valid value looks like.
    pub reason: &'static str,
}

impl DataConfig {
    /// The name of the file in which a `permuted_pixels` run keeps its permutation.
    pub const PERMUTATION_FILE: &str = "permutation.json";

    /// The reading order for `rows × cols` images. For `permuted_pixels` it is the permutation saved
    /// in `saved` when that file exists (a run's own), else the one drawn from `permutation_seed`.
    pub fn sequence_layout(
        &self,
        rows: usize,
        cols: usize,
        saved: Option<&Path>,
    ) -> Result<SequenceLayout, PermutationError> {
        Ok(match self.sequence {
            SequenceMode::Rows => SequenceLayout::Rows,
            SequenceMode::Pixels => SequenceLayout::Pixels,
            SequenceMode::PermutedPixels => {
                let permutation = match saved.filter(|path| path.exists()) {
                    Some(path) => Permutation::load(path, rows * cols)?,
                    None => Permutation::from_seed(rows * cols, self.permutation_seed),
                };
                SequenceLayout::PermutedPixels(Arc::new(permutation))
            }
        })
    }

    /// Training examples to hold out for validation from a training set of `n`: `validation_size`,
    /// or `validation_fraction` of `n` (rounded, kept within 1..n-1), or 0 (validation on the test set).
    pub fn held_out(&self, n: usize) -> usize {
        match self.validation_fraction {
            Some(fraction) if self.validation_size == 0 => {
                ((fraction * n as f64).round() as usize).clamp(1, n.saturating_sub(1).max(1))
            }
            _ => self.validation_size,
        }
    }

    /// Whether a validation split is held out of the training set (by count or by share).
    pub fn holds_out_validation(&self) -> bool {
        self.validation_size > 0 || self.validation_fraction.is_some()
    }

    /// The keys of this section that its source does not read, which a run's saved config leaves
    /// out and [`fill_defaults`](Self::fill_defaults) puts back: the image fields (MNIST's alone),
    /// the split fields (not a text's or a dictionary's, which split by their own rules), the other
    /// sources' sections, and the `.ts` settings elsewhere.
    pub fn keys_not_read(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.source != DataSource::Mnist {
            keys.extend(IMAGE_FIELDS);
        }
        if matches!(self.source, DataSource::Text | DataSource::Pronunciations) {
            keys.extend(SPLIT_FIELDS);
        }
        if self.source != DataSource::Ts {
            keys.extend(["missing", "validation_fraction"]);
        } else if self.validation_fraction.is_none() {
            keys.push("validation_fraction");
        }
        if self.text.is_none() {
            keys.push("text");
        }
        if self.pronunciations.is_none() {
            keys.push("pronunciations");
        }
        keys
    }

    /// Adds, to a JSON `data` section, the keys that later versions introduced (`source`) with the
    /// values that mean the old behaviour (MNIST), so that older configs and run directories load
    /// unchanged.
    pub fn fill_defaults(section: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = section {
            map.entry("source")
                .or_insert(DataSource::Mnist.name().into());
            map.entry("text").or_insert(serde_json::Value::Null);
            map.entry("pronunciations")
                .or_insert(serde_json::Value::Null);
            map.entry("missing")
                .or_insert(MissingValues::Refuse.name().into());
            map.entry("validation_fraction")
                .or_insert(serde_json::Value::Null);
            // Only MNIST runs read the image fields, and text and pronunciation runs read none of
            // the split fields either; a `.ts`, text or dictionary config may leave all of them
            // out, and they take their defaults (no validation split, no limits).
            if matches!(
                map.get("source").and_then(serde_json::Value::as_str),
                Some("ts" | "text" | "pronunciations")
            ) {
                let defaults = serde_json::to_value(Self::new()).expect("a config serializes");
                for key in IMAGE_FIELDS.into_iter().chain(SPLIT_FIELDS) {
                    map.entry(key).or_insert_with(|| defaults[key].clone());
                }
            }
        }
    }

    /// Reads a JSON `data` section, older ones included (see [`fill_defaults`](Self::fill_defaults)).
    pub fn from_json_value(mut section: serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::fill_defaults(&mut section);
        serde_json::from_value(section)
    }

    /// Checks values that make no sense (a non-positive or non-finite std, empty limits, …).
    pub fn validate(&self) -> Result<(), DataConfigError> {
        let err = |field, value: String, reason| {
            Err(DataConfigError {
                field,
                value,
                reason,
            })
        };
        if !self.mean.is_finite() {
            return err("mean", self.mean.to_string(), "it must be a finite number");
        }
        if !(self.std.is_finite() && self.std > 0.0) {
            return err("std", self.std.to_string(), "it must be a positive number");
        }
        for (field, limit) in [
            ("train_limit", self.train_limit),
            ("eval_limit", self.eval_limit),
        ] {
            if limit == Some(0) {
                return err(
                    field,
                    "0".into(),
                    "it must be at least 1, or null for no limit",
                );
            }
        }
        if let Some(text) = &self.text {
            if text.window == 0 {
                return err("text.window", "0".into(), "it must be at least 1");
            }
            if !(text.test_fraction > 0.0 && text.test_fraction < 1.0) {
                return err(
                    "text.test_fraction",
                    text.test_fraction.to_string(),
                    "it must lie strictly between 0 and 1",
                );
            }
            if text.validation_chars < 2 {
                return err(
                    "text.validation_chars",
                    text.validation_chars.to_string(),
                    "it must be at least 2 (a character and the one it predicts)",
                );
            }
        }
        if let Some(p) = &self.pronunciations {
            if p.repeat == 0 {
                return err(
                    "pronunciations.repeat",
                    "0".into(),
                    "it must be at least 1 (input steps per letter)",
                );
            }
            let fractions = [p.validation_fraction, p.test_fraction];
            if !(fractions.iter().all(|f| (0.0..1.0).contains(f))
                && fractions.iter().sum::<f64>() < 1.0)
            {
                return err(
                    "pronunciations.validation_fraction",
                    format!(
                        "{} (test_fraction {})",
                        p.validation_fraction, p.test_fraction
                    ),
                    "the two fractions must lie in [0, 1) and leave words to train on",
                );
            }
        }
        if let Some(fraction) = self.validation_fraction {
            if self.source != DataSource::Ts {
                return err(
                    "validation_fraction",
                    fraction.to_string(),
                    "only data.source \"ts\" reads it (MNIST holds out data.validation_size images); remove it or set it to null",
                );
            }
            if !(fraction > 0.0 && fraction < 1.0) {
                return err(
                    "validation_fraction",
                    fraction.to_string(),
                    "it must lie strictly between 0 and 1",
                );
            }
            if self.validation_size > 0 {
                return err(
                    "validation_fraction",
                    fraction.to_string(),
                    "give either data.validation_size (a count) or data.validation_fraction (a share), not both",
                );
            }
        }
        if self.missing != MissingValues::Refuse && self.source != DataSource::Ts {
            return err(
                "missing",
                format!("\"{}\"", self.missing.name()),
                "only data.source \"ts\" has missing values to fill; remove it or set it to \"refuse\"",
            );
        }
        match (self.source, &self.pronunciations) {
            (DataSource::Pronunciations, None) => {
                return err(
                    "pronunciations",
                    "null".into(),
                    "data.source \"pronunciations\" needs a `pronunciations` section ({\"file\": \"cmudict.dict\", \"format\": \"cmudict\"})",
                );
            }
            (DataSource::Mnist | DataSource::Ts | DataSource::Text, Some(_)) => {
                return err(
                    "pronunciations",
                    "set".into(),
                    "only data.source \"pronunciations\" reads it; remove it or set it to null",
                );
            }
            _ => {}
        }
        match (self.source, &self.text) {
            (DataSource::Text, None) => err(
                "text",
                "null".into(),
                "data.source \"text\" needs a `text` section ({\"file\": \"input.txt\", \"window\": 128, \"test_fraction\": 0.1, \"validation_chars\": 50000})",
            ),
            (DataSource::Mnist | DataSource::Ts | DataSource::Pronunciations, Some(_)) => err(
                "text",
                "set".into(),
                "only data.source \"text\" reads it; remove it or set it to null",
            ),
            _ => Ok(()),
        }
    }
}
