//! Saving and loading trained classifiers as Burn records, with the shape checks Burn's recorders skip.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FileRecorder, Recorder};
use burn::tensor::backend::Backend;

use crate::{Cell, ModelConfig, RecurrentClassifier, RecurrentClassifierRecord};

/// The recorder for models and checkpoints: Burn's named MessagePack, full precision (`.mpk`), written
/// atomically. Records are backend-independent: one saved from any backend loads on every other.
pub type ModelRecorder = AtomicRecorder<burn::record::DefaultRecorder>;

/// A file recorder that never leaves a partly written file under the final name: it writes
/// `.partial-<name>` beside the destination, flushes it to disk, then renames it over the destination.
/// A crash or `kill -9` mid-write leaves the previous file (or none), never a truncated one.
#[derive(Debug, Clone, Default)]
pub struct AtomicRecorder<R>(R);

impl<R: Default> AtomicRecorder<R> {
    /// An atomic version of the recorder `R`, which does the encoding.
    pub fn new() -> Self {
        Self(R::default())
    }
}

impl<B: Backend, R: FileRecorder<B>> Recorder<B> for AtomicRecorder<R> {
    type Settings = R::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: serde::Serialize>(
        &self,
        item: I,
        file: Self::RecordArgs,
    ) -> Result<(), burn::record::RecorderError> {
        let extension = <R as FileRecorder<B>>::file_extension();
        let destination = file.with_extension(extension);
        let name = destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The inner recorder appends the extension to the stem it is given, as it would to `file`.
        let partial_stem = destination.with_file_name(format!(".partial-{name}"));
        let partial = partial_stem.with_extension(extension);
        self.0.save_item(item, partial_stem)?;
        let unknown = |e: std::io::Error| burn::record::RecorderError::Unknown(e.to_string());
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(unknown)?;
        std::fs::rename(&partial, &destination).map_err(unknown)
    }

    fn load_item<I: serde::de::DeserializeOwned>(
        &self,
        file: &mut Self::LoadArgs,
    ) -> Result<I, burn::record::RecorderError> {
        self.0.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
}

/// Why a saved model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file is missing, unreadable or not a record of this model type.
    #[error("cannot load model record {path}: {message}")]
    Load {
        /// The record file.
        path: PathBuf,
        /// The recorder's complaint.
        message: String,
    },
    /// The record holds a model of another architecture than the config describes.
    #[error(
        "model record {path} does not match its config: {what} is {found:?} in the record but {expected:?} for the config ({config}); was the record saved with another config?"
    )]
    Mismatch {
        /// The record file.
        path: PathBuf,
        /// Which tensor (or the layer count).
        what: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the record.
        found: Vec<usize>,
        /// The config's sizes, in words.
        config: String,
    },
    /// The record could not be written.
    #[error("cannot save model record {path}: {message}")]
    Save {
        /// The destination.
        path: PathBuf,
        /// The recorder's complaint.
        message: String,
    },
}

impl ModelConfig {
    /// Loads a record saved with [`RecurrentClassifier::save`], checking every tensor against this config
    /// before building the model, so that a record of another architecture is an error, not a panic.
    pub fn load<B: Backend>(
        &self,
        path: impl AsRef<Path>,
        device: &B::Device,
    ) -> Result<RecurrentClassifier<B>, RecordError> {
        let path = path.as_ref();
        let record: RecurrentClassifierRecord<B> = ModelRecorder::new()
            .load(path.to_path_buf(), device)
            .map_err(|e| RecordError::Load {
                path: path.to_path_buf(),
                message: recorder_message(e),
            })?;
        self.from_record(record, path, device)
    }

    /// Builds the classifier from a record read by the caller (a training checkpoint nests one), after
    /// the same checks as [`load`](Self::load); `path` names the record's file in errors.
    pub fn from_record<B: Backend>(
        &self,
        record: RecurrentClassifierRecord<B>,
        path: &Path,
        device: &B::Device,
    ) -> Result<RecurrentClassifier<B>, RecordError> {
        self.check(&record, path)?;
        let model = self.init::<B>(device).map_err(|e| RecordError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(model.load_record(record))
    }

    fn check<B: Backend>(
        &self,
        record: &RecurrentClassifierRecord<B>,
        path: &Path,
    ) -> Result<(), RecordError> {
        let mismatch =
            |what: String, expected: Vec<usize>, found: Vec<usize>| RecordError::Mismatch {
                path: path.to_path_buf(),
                what,
                expected,
                found,
                config: format!(
                    "cell {}, input {}, hidden {}, {} layers{}, {} classes, bias {}",
                    self.cell,
                    self.input_size,
                    self.hidden_size,
                    self.num_layers,
                    if self.bidirectional {
                        " in two directions"
                    } else {
                        ""
                    },
                    self.num_classes,
                    self.bias
                ),
            };
        let layers = &record.rnn.layers;
        let stack = self.stack_shape();
        let directions = stack.directions();
        if layers.len() != self.num_layers * directions {
            return Err(mismatch(
                "the number of recurrent layers (directions included)".into(),
                vec![self.num_layers * directions],
                vec![layers.len()],
            ));
        }
        let h = self.hidden_size;
        let g = self.cell.gates() * h;
        let peephole = self.cell == Cell::PeepholeLstm;
        let shape = |param: &Option<burn::module::Param<burn::tensor::Tensor<B, 1>>>| {
            param.as_ref().map(|p| p.shape().to_vec())
        };
        for (k, layer) in layers.iter().enumerate() {
            let input = stack.level_input(k / directions);
            // (name, expected shape, present in this architecture, shape in the record)
            let checks = [
                (
                    "weight_ih",
                    vec![input, g],
                    true,
                    Some(layer.weight_ih.shape().to_vec()),
                ),
                (
                    "weight_hh",
                    vec![h, g],
                    true,
                    Some(layer.weight_hh.shape().to_vec()),
                ),
                ("bias_ih", vec![g], self.bias, shape(&layer.bias_ih)),
                ("bias_hh", vec![g], self.bias, shape(&layer.bias_hh)),
                ("weight_ci", vec![h], peephole, shape(&layer.weight_ci)),
                ("weight_cf", vec![h], peephole, shape(&layer.weight_cf)),
                ("weight_co", vec![h], peephole, shape(&layer.weight_co)),
            ];
            for (name, expected, wanted, found) in checks {
                let what = format!("rnn.layers.{k}.{name}");
                match (wanted, found) {
                    (true, Some(found)) if found != expected => {
                        return Err(mismatch(what, expected, found));
                    }
                    (true, None) => return Err(mismatch(what, expected, Vec::new())),
                    (false, Some(found)) => return Err(mismatch(what, Vec::new(), found)),
                    _ => {}
                }
            }
        }
        match (self.vocab_size, &record.embedding) {
            (Some(vocab), Some(embedding)) => {
                let found = embedding.weight.shape().to_vec();
                if found != [vocab, self.input_size] {
                    return Err(mismatch(
                        "embedding.weight".into(),
                        vec![vocab, self.input_size],
                        found,
                    ));
                }
            }
            (Some(vocab), None) => {
                return Err(mismatch(
                    "embedding.weight".into(),
                    vec![vocab, self.input_size],
                    Vec::new(),
                ));
            }
            (None, Some(embedding)) => {
                return Err(mismatch(
                    "embedding.weight".into(),
                    Vec::new(),
                    embedding.weight.shape().to_vec(),
                ));
            }
            (None, None) => {}
        }
        let fc_weight = record.fc.weight.shape().to_vec();
        if fc_weight != [directions * h, self.num_classes] {
            return Err(mismatch(
                "fc.weight".into(),
                vec![directions * h, self.num_classes],
                fc_weight,
            ));
        }
        if let Some(bias) = &record.fc.bias {
            let found = bias.shape().to_vec();
            if found != [self.num_classes] {
                return Err(mismatch("fc.bias".into(), vec![self.num_classes], found));
            }
        }
        Ok(())
    }
}

impl<B: Backend> RecurrentClassifier<B> {
    /// Saves the model as `<path>.mpk` (the extension is always `.mpk`); load it with [`ModelConfig::load`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RecordError> {
        let path = path.as_ref();
        ModelRecorder::new()
            .record(self.clone().into_record(), path.to_path_buf())
            .map_err(|e| RecordError::Save {
                path: path.with_extension(<ModelRecorder as FileRecorder<B>>::file_extension()),
                message: recorder_message(e),
            })
    }
}

fn recorder_message(error: burn::record::RecorderError) -> String {
    match error {
        burn::record::RecorderError::FileNotFound(message) => format!(
            "file not found ({message}); train the run first, or point at a run directory that holds its model.mpk"
        ),
        other => {
            // Burn's decoder messages can be long (whole float literals, notes about old formats):
            // keep the first line, shortened.
            let text = other.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.split("\\n").next().unwrap_or_default();
            let mut detail: String = first.chars().take(100).collect();
            if detail.len() < first.len() {
                detail.push('…');
            }
            format!(
                "not a readable model record: the file is corrupt, truncated or holds something else ({detail}); restore it or train again"
            )
        }
    }
}
