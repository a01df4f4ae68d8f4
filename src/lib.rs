//! lstm-mnist: recurrent sequence classifiers for MNIST, built on Burn.
//!
//! This facade re-exports the workspace's library crates; the top-level `tests/` use it for
//! cross-crate tests. The training command line is the `train` package.

pub use data;
pub use model;
