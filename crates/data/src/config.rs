use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::config::Config;

use crate::{Permutation, PermutationError, SequenceLayout, SequenceMode};

/// How MNIST is found, normalized, read as a sequence and split. Saved as part of a run's config.
#[derive(Config, Debug, PartialEq)]
pub struct DataConfig {
    /// Directory holding the four IDX files; `null` searches `MNIST_DIR`, then the cache (where `train`
    /// downloads MNIST when it is nowhere).
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
    /// Training images held out for validation; 0 validates on the test set, as the reference program does.
    #[config(default = 0)]
    pub validation_size: usize,
    /// Seed of the shuffle that picks the held-out validation images.
    #[config(default = 0)]
    pub split_seed: u64,
    /// Use only the first N training images (after the split); `null` uses all. For quick checks.
    pub train_limit: Option<usize>,
    /// Use only the first N evaluation images; `null` uses all.
    pub eval_limit: Option<usize>,
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
        Ok(())
    }
}
