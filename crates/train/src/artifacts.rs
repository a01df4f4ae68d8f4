//! The run directory: what a run writes and where.
//!
//! ```text
//! <run>/config.json      effective config, loadable as is
//! <run>/model.mpk        final model record (full precision, keys of model::RecurrentClassifier)
//! <run>/metrics.json     per-epoch numbers, data checksums, versions
//! <run>/permutation.json the pixel order of a permuted_pixels run
//! <run>/checkpoint/      Burn's model/optim/scheduler-<epoch>.mpk, for --resume
//! <run>/train/, valid/   Burn's per-batch metric logs
//! <run>/experiment.log   Burn's log
//! <run>/curves.png       training curves, confusion.png the test confusion matrix (`infer report`)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Paths inside a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    /// The directory itself.
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The effective config.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// The final model record, without extension (Burn's recorders add `.mpk`).
    pub fn model_stem(&self) -> PathBuf {
        self.root.join("model")
    }

    /// The final model record file.
    pub fn model_file(&self) -> PathBuf {
        self.root.join("model.mpk")
    }

    /// `metrics.json`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    /// The pixel permutation of a `permuted_pixels` run.
    pub fn permutation(&self) -> PathBuf {
        self.root.join(data::DataConfig::PERMUTATION_FILE)
    }

    /// Everything a run and its report write here: what `--overwrite` removes before a fresh run, so
    /// that nothing of the replaced run (its plots or logs) is left beside the new model.
    pub fn outputs(&self) -> Vec<PathBuf> {
        let files = [
            "model.mpk",
            "metrics.json",
            "experiment.log",
            "curves.png",
            "confusion.png",
        ];
        let dirs = ["checkpoint", "train", "valid"];
        files
            .iter()
            .chain(&dirs)
            .map(|name| self.root.join(name))
            .chain([self.permutation()])
            .collect()
    }

    /// Burn's checkpoint directory.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// The model checkpoint of `epoch`, a record of [`Trainable`](crate::Trainable).
    pub fn model_checkpoint(&self, epoch: usize) -> PathBuf {
        self.checkpoints().join(format!("model-{epoch}.mpk"))
    }

    /// The epochs with a model checkpoint, complete or not, in increasing order.
    pub fn checkpoint_epochs(&self) -> Vec<usize> {
        let Ok(dir) = std::fs::read_dir(self.checkpoints()) else {
            return Vec::new();
        };
        let mut epochs: Vec<usize> = dir
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("model-")?
                    .strip_suffix(".mpk")?
                    .parse::<usize>()
                    .ok()
            })
            .collect();
        epochs.sort_unstable();
        epochs
    }

    /// The latest epoch with a complete checkpoint (model, optimizer and scheduler all present).
    pub fn last_checkpoint(&self) -> Option<usize> {
        self.checkpoint_epochs()
            .into_iter()
            .filter(|epoch| {
                ["optim", "scheduler"].iter().all(|kind| {
                    self.checkpoints()
                        .join(format!("{kind}-{epoch}.mpk"))
                        .is_file()
                })
            })
            .max()
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so the
/// file under its final name is always complete.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
