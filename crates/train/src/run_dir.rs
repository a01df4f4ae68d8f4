//! The run directory's lifecycle: prepared for a fresh, resumed or replacing run, its config
//! written, a checkpoint's model loaded, the final model saved. Where each file lies is
//! [`RunDir`]'s business (`artifacts`).

use burn::record::Recorder as _;
use burn::tensor::backend::Backend;
use model::{ModelRecorder, RecurrentClassifier};

use crate::artifacts::{RunDir, write_atomically};
use crate::config::TrainConfig;
use crate::error::{TrainError, io_error};
use crate::step::TrainableRecord;

/// Checks and creates the run directory. Returns the epoch to resume after (0 for a fresh run).
pub(crate) fn prepare(
    run_dir: &RunDir,
    config: &TrainConfig,
    resume: bool,
    overwrite: bool,
) -> Result<usize, TrainError> {
    let root = &run_dir.root;
    if resume {
        let Some(epoch) = run_dir.last_checkpoint() else {
            return Err(TrainError::Resume {
                path: root.clone(),
                message: format!(
                    "no complete checkpoint under {}; start a fresh run instead",
                    run_dir.checkpoints().display()
                ),
            });
        };
        if epoch >= config.num_epochs {
            return Err(TrainError::Resume {
                path: root.clone(),
                message: format!(
                    "the run already completed epoch {epoch} of {}; raise --epochs to train further",
                    config.num_epochs
                ),
            });
        }
        write_config(run_dir, config)?;
        return Ok(epoch);
    }
    let occupied = run_dir.config().exists() || run_dir.checkpoints().exists();
    if occupied && !overwrite {
        return Err(io_error(
            root,
            "already holds a run; pass --resume to continue it, --overwrite to replace it, or --artifacts DIR to use another directory",
        ));
    }
    if occupied {
        for path in run_dir.outputs() {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else if path.exists() {
                std::fs::remove_file(&path)
            } else {
                Ok(())
            };
            removed.map_err(|e| {
                io_error(
                    &path,
                    format!("cannot remove the replaced run's file ({e})"),
                )
            })?;
        }
    }
    if root.exists() && !root.is_dir() {
        return Err(io_error(
            root,
            "is a file, not a directory; choose another --artifacts DIR",
        ));
    }
    std::fs::create_dir_all(root).map_err(|e| {
        io_error(
            root,
            format!("cannot create the run directory ({e}); choose a writable --artifacts DIR"),
        )
    })?;
    write_config(run_dir, config)?;
    Ok(0)
}

pub(crate) fn write_config(run_dir: &RunDir, config: &TrainConfig) -> Result<(), TrainError> {
    let path = run_dir.config();
    write_atomically(&path, config.to_run_json().as_bytes()).map_err(|e| {
        io_error(
            &path,
            format!("cannot write the config ({e}); choose a writable --artifacts DIR"),
        )
    })
}

/// The classifier in the model checkpoint of `epoch`.
pub(crate) fn load_checkpoint<B: Backend>(
    run_dir: &RunDir,
    config: &TrainConfig,
    epoch: usize,
    device: &B::Device,
) -> Result<RecurrentClassifier<B>, TrainError> {
    let path = run_dir.model_checkpoint(epoch);
    if !path.is_file() {
        return Err(TrainError::Finish {
            path: run_dir.root.clone(),
            message: format!(
                "`model_selection` \"{}\" chooses epoch {epoch}, but its checkpoint {} is gone; set `model_selection` in {} to \"last\" to take the last epoch's model instead",
                config.model_selection.name(),
                path.display(),
                run_dir.config().display()
            ),
        });
    }
    let record: TrainableRecord<B> =
        ModelRecorder::new()
            .load(path.clone(), device)
            .map_err(|e| model::RecordError::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
    Ok(config.model.from_record(record.model, &path, device)?)
}

/// Saves the final model under its final name only once it is completely written.
pub(crate) fn save_model<B: Backend>(
    run_dir: &RunDir,
    model: &RecurrentClassifier<B>,
) -> Result<(), TrainError> {
    let tmp_stem = run_dir.root.join(".model-partial");
    let tmp_file = tmp_stem.with_extension("mpk");
    model.save(&tmp_stem).map_err(|e| io_error(&tmp_file, e))?;
    std::fs::rename(&tmp_file, run_dir.model_file()).map_err(|e| io_error(&run_dir.model_file(), e))
}
