//! How an image becomes a sequence: row by row, pixel by pixel, or pixel by pixel in a fixed random
//! order (the long-term-dependency benchmarks known as sequential and permuted MNIST).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The reading order named in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceMode {
    /// One step per row, each step the row's pixels (28 steps × 28 features for MNIST).
    #[default]
    Rows,
    /// One step per pixel in row-major order (784 steps × 1 feature): sequential MNIST.
    Pixels,
    /// One step per pixel in a fixed random order drawn from a seed: permuted sequential MNIST.
    PermutedPixels,
}

impl SequenceMode {
    /// `(time steps, features per step)` for `rows × cols` images.
    pub fn shape(self, rows: usize, cols: usize) -> (usize, usize) {
        match self {
            SequenceMode::Rows => (rows, cols),
            SequenceMode::Pixels | SequenceMode::PermutedPixels => (rows * cols, 1),
        }
    }

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            SequenceMode::Rows => "rows",
            SequenceMode::Pixels => "pixels",
            SequenceMode::PermutedPixels => "permuted_pixels",
        }
    }
}

/// A fixed reordering of an image's pixels: step `t` reads pixel `order[t]` (row-major index).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Permutation {
    order: Vec<u32>,
}

/// Why a saved permutation cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PermutationError {
    /// The file could not be read or written.
    #[error("cannot access pixel permutation {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not the JSON this crate writes.
    #[error(
        "pixel permutation {path} is not valid JSON ({message}); it is written by `train` for permuted_pixels runs"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// serde's complaint.
        message: String,
    },
    /// The numbers are not a permutation of `0..len`.
    #[error(
        "pixel permutation {path}: {problem}; the file was edited or belongs to another image size"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Permutation {
    /// A uniformly random permutation of `0..len`, the same for the same `(len, seed)`.
    pub fn from_seed(len: usize, seed: u64) -> Self {
        let mut order: Vec<u32> = (0..len as u32).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        Self { order }
    }

    /// Checks that `order` holds every index of `0..order.len()` exactly once.
    pub fn new(order: Vec<u32>) -> Result<Self, String> {
        let mut seen = vec![false; order.len()];
        for (t, &index) in order.iter().enumerate() {
            match seen.get_mut(index as usize) {
                Some(slot) if !*slot => *slot = true,
                Some(_) => return Err(format!("index {index} appears twice (again at step {t})")),
                None => {
                    return Err(format!(
                        "index {index} at step {t} is out of range for {} pixels",
                        order.len()
                    ));
                }
            }
        }
        Ok(Self { order })
    }

    /// The pixel read at each step.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Number of pixels permuted.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there is nothing to permute.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Reads a permutation written by [`save`](Self::save), checking that it is one of `expected_len` pixels.
    pub fn load(path: impl AsRef<Path>, expected_len: usize) -> Result<Self, PermutationError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| PermutationError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let raw: Permutation =
            serde_json::from_str(&text).map_err(|e| PermutationError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let invalid = |problem: String| PermutationError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        if raw.len() != expected_len {
            return Err(invalid(format!(
                "it orders {} pixels, the images have {expected_len}",
                raw.len()
            )));
        }
        Self::new(raw.order).map_err(invalid)
    }

    /// The JSON text [`load`](Self::load) reads: `{"order": [...]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a list of integers always serializes")
    }
}

/// The reading order a batcher applies: a [`SequenceMode`] with its permutation resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SequenceLayout {
    /// Rows as steps.
    #[default]
    Rows,
    /// Pixels as steps, row-major.
    Pixels,
    /// Pixels as steps, in the permutation's order.
    PermutedPixels(Arc<Permutation>),
}

impl SequenceLayout {
    /// The mode this layout implements.
    pub fn mode(&self) -> SequenceMode {
        match self {
            SequenceLayout::Rows => SequenceMode::Rows,
            SequenceLayout::Pixels => SequenceMode::Pixels,
            SequenceLayout::PermutedPixels(_) => SequenceMode::PermutedPixels,
        }
    }
}
