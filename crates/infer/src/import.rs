//! Bringing a PyTorch-trained model over: a state_dict becomes a run directory.

use std::path::Path;

use burn::tensor::backend::Backend;
use data::{DataConfig, DataSource, SequenceMode, TextConfig, Vocabulary};
use model::ModelConfig;
use model::pytorch::StateDict;

use crate::InferError;

/// Reads a PyTorch state_dict of a recurrent classifier (any cell) (safetensors, or `.pt`/`.pth` from
/// `torch.save`; sizes read from the tensors)
/// and writes `out` as a run directory: `config.json` (model sizes, MNIST normalization) and `model.mpk`.
///
/// A character language model saved with the names of PyTorch's `word_language_model`
/// (`encoder.weight`, `rnn.*`, `decoder.*`) needs its vocabulary, `vocabulary` (the characters in
/// token-id order), which is written as the run's `vocab.json`; its config reads a text
/// (`data.source: "text"`, Tiny Shakespeare's split and windows) from `data.dir`, unset.
pub fn import_pytorch<B: Backend>(
    file: &Path,
    out: &Path,
    vocabulary: Option<&Vocabulary>,
    device: &B::Device,
) -> Result<ModelConfig, InferError> {
    let state = StateDict::read_any(file)?;
    let model = state.to_classifier::<B>(device)?;
    let config = model.config();
    let data = match (config.vocab_size, vocabulary) {
        (Some(size), Some(vocabulary)) if size == vocabulary.len() => DataConfig::new()
            .with_source(DataSource::Text)
            .with_text(Some(TextConfig::new())),
        (Some(size), Some(vocabulary)) => {
            return Err(InferError::RunConfig {
                path: file.to_path_buf(),
                message: format!(
                    "its embedding has {size} tokens, but the vocabulary given has {} characters; give the vocabulary the model was trained with",
                    vocabulary.len()
                ),
            });
        }
        (Some(_), None) => {
            return Err(InferError::RunConfig {
                path: file.to_path_buf(),
                message: "is a language model (it has encoder.weight): pass its vocabulary with --vocab FILE ({\"chars\": [\"\\n\", \" \", …]}, in token-id order)".into(),
            });
        }
        (None, Some(_)) => {
            return Err(InferError::RunConfig {
                path: file.to_path_buf(),
                message:
                    "is a classifier (it has no encoder.weight): --vocab is for language models"
                        .into(),
            });
        }
        (None, None) => {
            // One feature per step means the model reads pixels; any other width reads rows.
            let sequence = if config.input_size == 1 {
                SequenceMode::Pixels
            } else {
                SequenceMode::Rows
            };
            DataConfig::new().with_sequence(sequence)
        }
    };
    std::fs::create_dir_all(out).map_err(|e| InferError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    if let Some(vocabulary) = vocabulary {
        vocabulary.save(&out.join(Vocabulary::FILE))?;
    }
    let json = serde_json::json!({
        "model": config,
        "data": data,
        "imported_from": file.display().to_string(),
    });
    let path = out.join("config.json");
    let text = serde_json::to_string_pretty(&json).expect("config serializes");
    std::fs::write(&path, text).map_err(|e| InferError::Write {
        path,
        message: e.to_string(),
    })?;
    model.save(out.join("model"))?;
    Ok(config)
}
