//! Helpers shared by the model crate's tests: fixture paths and the backends this build enables.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The language-model parity fixtures (`pytorch-lm-*.safetensors`: two windows, the state carried).
pub fn language_model_fixtures() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("pytorch-lm-") && name.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the LSTM and GRU language-model fixtures in {}",
        dir.display()
    );
    files
}

/// Every PyTorch classifier fixture this repository carries (random inputs; the reference sizes and others).
pub fn repo_fixtures() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("pytorch-")
                && !name.starts_with("pytorch-lm-")
                && name.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the LSTM fixtures in {}",
        dir.display()
    );
    files
}

/// The PyTorch fixture of the reference architecture (`nn.LSTM(28, 10, 2)` then `Linear(10, 10)`).
pub fn reference_fixture() -> PathBuf {
    cell_fixture("lstm")
}

/// The repository's PyTorch fixture of one cell (`lstm`, `peephole`, `gru`, `rnn`) at the reference sizes:
/// input 28, hidden 10, 2 layers, 10 classes.
pub fn cell_fixture(cell: &str) -> PathBuf {
    let path = repo_root().join(format!("tests/fixtures/pytorch-{cell}-h10-l2.safetensors"));
    assert!(
        path.is_file(),
        "{} is missing: tests/fixtures/make_fixtures.py writes it",
        path.display()
    );
    path
}

/// Runs `$body` once per backend enabled in this build, with `B` bound to the autodiff backend and
/// `device` to its default device.
#[macro_export]
macro_rules! for_each_backend {
    (|$name:ident, $device:ident| $body:block) => {{
        #[cfg(feature = "ndarray")]
        {
            type B = burn::backend::Autodiff<burn::backend::NdArray>;
            let $name = "ndarray";
            let $device: burn::tensor::Device<B> = Default::default();
            $body
        }
        #[cfg(feature = "flex")]
        {
            type B = burn::backend::Autodiff<burn::backend::Flex>;
            let $name = "flex";
            let $device: burn::tensor::Device<B> = Default::default();
            $body
        }
        #[cfg(feature = "wgpu")]
        {
            type B = burn::backend::Autodiff<burn::backend::Wgpu>;
            let $name = "wgpu";
            let $device: burn::tensor::Device<B> = Default::default();
            $body
        }
        #[cfg(feature = "cuda")]
        {
            type B = burn::backend::Autodiff<burn::backend::Cuda>;
            let $name = "cuda";
            let $device: burn::tensor::Device<B> = Default::default();
            $body
        }
    }};
}
