//! Helpers the training tests share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::backend::NdArray;
use train::{Display, RunOptions, TrainConfig};

/// Held by every test that trains in this process: backends seed a process-wide RNG, so runs must not
/// interleave.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// A fresh directory under the system's temporary one, named by the test file's `prefix`, the
/// test's `tag` and this process, so that parallel test binaries never share one.
pub fn temp(prefix: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Options for a run of `config` into `dir` on ndarray, printing a line per epoch.
pub fn options(config: TrainConfig, dir: &Path, resume: bool) -> RunOptions {
    RunOptions {
        config,
        run_dir: dir.to_path_buf(),
        resume,
        overwrite: false,
        backend: "ndarray".into(),
        display: Display::Lines,
        stop: Default::default(),
    }
}

/// Every weight of the model a finished run in `dir` saved, as one vector.
pub fn run_weights(dir: &Path) -> Vec<f32> {
    let config = TrainConfig::load(dir.join("config.json")).unwrap();
    let model = config
        .model
        .load::<NdArray>(dir.join("model.mpk"), &Default::default())
        .unwrap();
    model::pytorch::StateDict::from_classifier(&model).float_values()
}
