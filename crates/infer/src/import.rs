//! Bringing a PyTorch-trained model over: a state_dict becomes a run directory.

use std::path::Path;

use data::{DataConfig, SequenceMode};
use model::ModelConfig;
use model::RecurrentBackend;
use model::pytorch::StateDict;

use crate::InferError;

/// Reads a PyTorch state_dict of a recurrent classifier (any cell) (safetensors, or `.pt`/`.pth` from
/// `torch.save`; sizes read from the tensors)
/// and writes `out` as a run directory: `config.json` (model sizes, MNIST normalization) and `model.mpk`.
pub fn import_pytorch<B: RecurrentBackend>(
    file: &Path,
    out: &Path,
    device: &B::Device,
) -> Result<ModelConfig, InferError> {
    let state = StateDict::read_any(file)?;
    let model = state.to_classifier::<B>(device)?;
    let config = model.config();
    std::fs::create_dir_all(out).map_err(|e| InferError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    // One feature per step means the model reads pixels; any other width reads rows.
    let sequence = if config.input_size == 1 {
        SequenceMode::Pixels
    } else {
        SequenceMode::Rows
    };
    let json = serde_json::json!({
        "model": config,
        "data": DataConfig::new().with_sequence(sequence),
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
