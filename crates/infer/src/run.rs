//! A run directory as inference sees it: the model and data sections of `config.json`, and `model.mpk`.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use data::{DataConfig, DataSource, MnistBatcher, SequenceInfo, Vocabulary};
use model::{ModelConfig, RecurrentClassifier};
use serde_json::Value;

use crate::InferError;

/// A trained model's run directory, opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The directory.
    pub dir: PathBuf,
    /// The network sizes from `config.json`.
    pub model: ModelConfig,
    /// Normalization and data location from `config.json`.
    pub data: DataConfig,
    /// A `.ts` run's class names and per-feature normalization (`sequences.json`).
    pub sequences: Option<SequenceInfo>,
    /// The run's `eval_batch_size`: a text run's test figure is over that many streams.
    pub eval_batch_size: Option<usize>,
}

impl Run {
    /// Reads `<dir>/config.json` (as written by `train` or `infer import-pytorch`).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, InferError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join("config.json");
        let bad = |message: String| InferError::RunConfig {
            path: path.clone(),
            message,
        };
        if !dir.is_dir() {
            return Err(InferError::NotARun {
                dir,
                message: "no such directory".into(),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| InferError::NotARun {
            dir: dir.clone(),
            message: format!("cannot read config.json ({e}); a run directory is what `train` writes (e.g. artifacts/seed)"),
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let section = |name: &str| {
            json.get(name)
                .cloned()
                .ok_or_else(|| bad(format!("no `{name}` section")))
        };
        let model = ModelConfig::from_json_value(section("model")?)
            .map_err(|e| bad(format!("section `model`: {e}")))?;
        let data = DataConfig::from_json_value(section("data")?)
            .map_err(|e| bad(format!("section `data`: {e}")))?;
        model.validate().map_err(|e| bad(e.to_string()))?;
        data.validate().map_err(|e| bad(e.to_string()))?;
        let sequences = match data.source {
            DataSource::Mnist | DataSource::Text | DataSource::Pronunciations => None,
            DataSource::Ts => {
                let path = dir.join(SequenceInfo::FILE);
                let info = SequenceInfo::load(&path).map_err(|message| InferError::NotARun {
                    dir: dir.clone(),
                    message: format!(
                        "{message}; a run trained on .ts data keeps its class names and normalization there"
                    ),
                })?;
                if info.dimensions != model.input_size || info.classes.len() != model.num_classes {
                    return Err(InferError::RunConfig {
                        path: path.clone(),
                        message: format!(
                            "describes {} features and {} classes, but the model reads {} and has {}",
                            info.dimensions,
                            info.classes.len(),
                            model.input_size,
                            model.num_classes
                        ),
                    });
                }
                Some(info)
            }
        };
        let eval_batch_size = json
            .get("eval_batch_size")
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .filter(|&n| n > 0);
        Ok(Self {
            dir,
            model,
            data,
            sequences,
            eval_batch_size,
        })
    }

    /// Whether the run is a character language model (`data.source: "text"`).
    pub fn is_text(&self) -> bool {
        self.data.source == DataSource::Text
    }

    /// A text run's vocabulary (`vocab.json`), checked against the model's sizes.
    pub fn vocabulary(&self) -> Result<Vocabulary, InferError> {
        let path = self.dir.join(Vocabulary::FILE);
        let vocabulary = Vocabulary::load(&path)?;
        if Some(vocabulary.len()) != self.model.vocab_size
            || vocabulary.len() != self.model.num_classes
        {
            return Err(InferError::RunConfig {
                path,
                message: format!(
                    "holds {} characters, but the model reads {:?} token ids and predicts {} classes",
                    vocabulary.len(),
                    self.model.vocab_size,
                    self.model.num_classes
                ),
            });
        }
        Ok(vocabulary)
    }

    /// The model record file.
    pub fn model_file(&self) -> PathBuf {
        self.dir.join("model.mpk")
    }

    /// The batcher that turns `rows × cols` images into the sequences this model was trained on
    /// (normalization and reading order, with the run's own pixel permutation if it has one).
    pub fn batcher(&self, rows: usize, cols: usize) -> Result<MnistBatcher, InferError> {
        let saved = self.dir.join(DataConfig::PERMUTATION_FILE);
        let layout = self.data.sequence_layout(rows, cols, Some(&saved))?;
        let batcher =
            MnistBatcher::new(rows, cols, self.data.mean, self.data.std).with_layout(layout);
        let (steps, features) = batcher.sequence_shape();
        if features != self.model.input_size {
            return Err(InferError::RunConfig {
                path: self.dir.join("config.json"),
                message: format!(
                    "{rows}x{cols} images read as `{}` give {steps} steps of {features} features, but model.input_size is {}",
                    self.data.sequence.name(),
                    self.model.input_size
                ),
            });
        }
        Ok(batcher)
    }

    /// Loads the trained classifier, checking the record against the config.
    pub fn load_model<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<RecurrentClassifier<B>, InferError> {
        Ok(self.model.load(self.model_file(), device)?)
    }
}
