//! The default CPU backend's instances of training, compiled once, here: in unoptimized builds rustc
//! shares generic instances between crates, so the `train` binary, the examples and every test that
//! trains on `Autodiff<NdArray>` link these instead of compiling Burn's Learner, the optimizers and
//! the model for it again (docs/benchmarks.md, "The test build"). Optimized builds leave them out, as
//! do builds whose binaries choose another backend (`backend`'s rule).

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};

use crate::{RunOptions, RunOutcome, TrainConfig, TrainError, finish, train, train_sequences};

type Train = Autodiff<NdArray>;
type Device = burn::tensor::Device<NdArray>;
type Outcome = Result<RunOutcome<NdArray>, TrainError>;

/// Function pointers to the instances, which makes rustc compile them into this library.
pub fn instances() -> impl Sized {
    std::hint::black_box((
        train::<Train> as fn(RunOptions, Device) -> Outcome,
        train_sequences::<Train>
            as fn(RunOptions, data::TsDataset, data::TsDataset, Device) -> Outcome,
        finish::<Train> as fn(TrainConfig, PathBuf, Device) -> Outcome,
    ))
}
