//! A `.ts` dataset as training data: the directory that holds it, per-feature normalization fitted on
//! the training examples, and the batcher that pads a batch to its longest sequence and records each
//! length.

use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::{MissingValues, SequenceBatch, TsDataset, TsError, TsExample};

impl Dataset<TsExample> for TsDataset {
    fn get(&self, index: usize) -> Option<TsExample> {
        self.examples.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.examples.len()
    }
}

impl TsDataset {
    /// A dataset of sequences held in memory: each `(steps, label)` a sequence of `F` features per
    /// step (at least one step) and the index of its class in `classes`. What a `.ts` file would
    /// hold, for [`train_sequences`](../train/fn.train_sequences.html) and inference.
    pub fn from_sequences<const F: usize>(
        classes: Vec<String>,
        sequences: impl IntoIterator<Item = (Vec<[f32; F]>, usize)>,
    ) -> Result<Self, TsError> {
        let mut examples = Vec::new();
        for (k, (steps, label)) in sequences.into_iter().enumerate() {
            let problem = |message: String| TsError::Parse {
                path: PathBuf::from("<memory>"),
                line: k + 1,
                message,
            };
            if steps.is_empty() {
                return Err(problem("a sequence needs at least one step".into()));
            }
            if label >= classes.len() {
                return Err(problem(format!(
                    "label {label} names no class: there are {} ({:?})",
                    classes.len(),
                    classes
                )));
            }
            if let Some(v) = steps.iter().flatten().find(|v| !v.is_finite()) {
                return Err(problem(format!("{v} is not a finite number")));
            }
            examples.push(TsExample {
                length: steps.len(),
                values: steps.into_iter().flatten().collect(),
                label: Some(label),
                line: 0,
            });
        }
        if examples.is_empty() {
            return Err(TsError::Parse {
                path: PathBuf::from("<memory>"),
                line: 0,
                message: "no sequences".into(),
            });
        }
        Ok(Self {
            problem: None,
            dimensions: F,
            classes,
            examples,
        })
    }

    /// The examples at `positions`, in that order, with this file's header.
    pub fn subset(&self, positions: &[usize]) -> Self {
        Self {
            examples: positions
                .iter()
                .map(|&i| self.examples[i].clone())
                .collect(),
            ..self.header_only()
        }
    }

    /// The first `n` examples.
    pub fn take(mut self, n: usize) -> Self {
        self.examples.truncate(n);
        self
    }

    /// Each example's length, in order (what a loader groups batches by).
    pub fn lengths(&self) -> Vec<usize> {
        self.examples.iter().map(|e| e.length).collect()
    }

    fn header_only(&self) -> Self {
        Self {
            problem: self.problem.clone(),
            dimensions: self.dimensions,
            classes: self.classes.clone(),
            examples: Vec::new(),
        }
    }
}

/// The two files of a `.ts` dataset directory: one `*_TRAIN.ts`, one `*_TEST.ts` (the archive's
/// naming, e.g. `FSDD_TRAIN.ts` and `FSDD_TEST.ts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsFiles {
    /// The training file.
    pub train: PathBuf,
    /// The test file.
    pub test: PathBuf,
}

impl TsFiles {
    /// Finds the two files in `dir`.
    pub fn locate(dir: &Path) -> Result<Self, TsError> {
        let problem = |message: String| TsError::Locate {
            dir: dir.to_path_buf(),
            message,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| {
            problem(format!(
                "cannot list it ({e}); pass a directory that holds *_TRAIN.ts and *_TEST.ts"
            ))
        })?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("ts"))
            })
            .collect();
        names.sort();
        let pick = |suffix: &str| -> Result<PathBuf, TsError> {
            let found: Vec<&PathBuf> = names
                .iter()
                .filter(|path| {
                    path.file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s.to_ascii_uppercase().ends_with(suffix))
                })
                .collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(problem(format!(
                    "holds no *{suffix}.ts file; a .ts dataset directory holds one *_TRAIN.ts and one *_TEST.ts"
                ))),
                many => Err(problem(format!(
                    "holds {} *{suffix}.ts files ({}); keep one per directory",
                    many.len(),
                    many.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        };
        Ok(Self {
            train: pick("_TRAIN")?,
            test: pick("_TEST")?,
        })
    }

    /// Reads both files, missing values treated as `missing` says, and checks that they agree: the
    /// same channel count and the same classes.
    pub fn load(&self, missing: MissingValues) -> Result<(TsDataset, TsDataset), TsError> {
        let train = TsDataset::read_with(&self.train, missing)?;
        train.require_labels(&self.train)?;
        let test = TsDataset::read_with(&self.test, missing)?;
        test.require_labels(&self.test)?;
        let mismatch = |message: String| TsError::Parse {
            path: self.test.clone(),
            line: 0,
            message,
        };
        if test.dimensions != train.dimensions {
            return Err(mismatch(format!(
                "{} channels per step, but {} has {}; both files of a dataset describe the same sequences",
                test.dimensions,
                self.train.display(),
                train.dimensions
            )));
        }
        if test.classes != train.classes {
            return Err(mismatch(format!(
                "declares the classes {:?}, but {} declares {:?}; both files must declare the same classes in the same order",
                test.classes,
                self.train.display(),
                train.classes
            )));
        }
        Ok((train, test))
    }
}

/// What a run trained on `.ts` data keeps about its data, so that inference reads new sequences the
/// same way: the class names and the per-feature normalization fitted on the training examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceInfo {
    /// `@problemName` of the training file, when it has one.
    pub problem: Option<String>,
    /// Features per step.
    pub dimensions: usize,
    /// Class names; a model's output k is class `classes[k]`.
    pub classes: Vec<String>,
    /// Per-feature mean of the training examples (over every step of every example).
    pub mean: Vec<f64>,
    /// Per-feature standard deviation of the training examples (1 where a feature is constant).
    pub std: Vec<f64>,
}

impl SequenceInfo {
    /// The file name under a run directory.
    pub const FILE: &str = "sequences.json";

    /// Fits the normalization on `train` (summed in f64, in file order: the same bits every time).
    pub fn fit(train: &TsDataset) -> Self {
        let d = train.dimensions;
        let (mut sum, mut count) = (vec![0.0f64; d], 0usize);
        for example in &train.examples {
            for step in example.values.chunks_exact(d) {
                for (s, &v) in sum.iter_mut().zip(step) {
                    *s += f64::from(v);
                }
            }
            count += example.length;
        }
        let n = count.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let mut squares = vec![0.0f64; d];
        for example in &train.examples {
            for step in example.values.chunks_exact(d) {
                for ((q, &v), m) in squares.iter_mut().zip(step).zip(&mean) {
                    let centered = f64::from(v) - m;
                    *q += centered * centered;
                }
            }
        }
        let std = squares
            .iter()
            .map(|q| {
                let s = (q / n).sqrt();
                if s > 0.0 && s.is_finite() { s } else { 1.0 }
            })
            .collect();
        Self {
            problem: train.problem.clone(),
            dimensions: d,
            classes: train.classes.clone(),
            mean,
            std,
        }
    }

    /// Saves it as JSON.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("sequence info serializes");
        std::fs::write(path, text)
    }

    /// Reads a saved one.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a sequences.json written by train: {e}",
                path.display()
            )
        })
    }

    /// Checks that `dataset` reads like the training data: same channel count, same classes (when it has
    /// labels).
    pub fn check(&self, dataset: &TsDataset, path: &Path) -> Result<(), TsError> {
        let error = |message: String| TsError::Parse {
            path: path.to_path_buf(),
            line: 0,
            message,
        };
        if dataset.dimensions != self.dimensions {
            return Err(error(format!(
                "{} channels per step, but the model was trained on {}",
                dataset.dimensions, self.dimensions
            )));
        }
        if dataset.is_labelled() && dataset.classes != self.classes {
            return Err(error(format!(
                "declares the classes {:?}, but the model was trained on {:?}",
                dataset.classes, self.classes
            )));
        }
        Ok(())
    }
}

/// Pads a batch of `.ts` examples to its longest sequence (zeros), normalizes every feature with
/// `(x - mean) / std`, and records each length.
#[derive(Debug, Clone, PartialEq)]
pub struct TsBatcher {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl TsBatcher {
    /// A batcher normalizing as `info` says.
    pub fn new(info: &SequenceInfo) -> Self {
        Self {
            mean: info.mean.iter().map(|&m| m as f32).collect(),
            std: info.std.iter().map(|&s| s as f32).collect(),
        }
    }
}

impl<B: Backend> Batcher<B, TsExample, SequenceBatch<B>> for TsBatcher {
    fn batch(&self, items: Vec<TsExample>, device: &B::Device) -> SequenceBatch<B> {
        let d = self.mean.len();
        let n = items.len();
        let longest = items.iter().map(|e| e.length).max().unwrap_or(0);
        let mut values = vec![0.0f32; n * longest * d];
        for (row, example) in items.iter().enumerate() {
            let out = &mut values[row * longest * d..][..example.length * d];
            for (k, (o, &v)) in out.iter_mut().zip(&example.values).enumerate() {
                let f = k % d;
                *o = (v - self.mean[f]) / self.std[f];
            }
        }
        let lengths: Vec<usize> = items.iter().map(|e| e.length).collect();
        // An unlabelled example (a file to classify) gets target 0, which prediction does not read.
        let labels: Vec<i64> = items
            .iter()
            .map(|e| e.label.map_or(0, |label| label as i64))
            .collect();
        SequenceBatch {
            sequences: Tensor::from_data(TensorData::new(values, [n, longest, d]), device),
            lengths: lengths.iter().any(|&l| l != longest).then_some(lengths),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
