//! Helpers shared by the model crate's tests: fixture paths and the backends this build enables.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The PyTorch fixtures this repository carries (random inputs, other sizes than the reference).
pub fn repo_fixtures() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the LSTM fixtures in {}",
        dir.display()
    );
    files
}

/// The shared reference fixture of the reference architecture (`../shared/fixtures` beside the clone).
pub fn shared_lstm_fixture() -> PathBuf {
    shared_fixture("lstm")
}

/// The shared PyTorch fixture of one cell (`lstm`, `peephole`, `gru`, `rnn`), hidden 10, 2 layers.
pub fn shared_fixture(cell: &str) -> PathBuf {
    let path = repo_root().join(format!(
        "../shared/fixtures/pytorch-{cell}-h10-l2.safetensors"
    ));
    assert!(
        path.is_file(),
        "{} is missing: the shared fixtures live in ../shared beside the repository",
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
    }};
}
