//! The default CPU backend's instances of the model's generic entry points, compiled once, here.
//!
//! In unoptimized builds (the dev and test profiles) rustc shares generic instances between crates: a
//! test, example or tool that calls, say, `parity::check::<Autodiff<NdArray>>` links the copy compiled
//! in this library instead of compiling Burn's autodiff, the kernels' dispatch and the model for that
//! backend again. That repeated work was most of the cold test build (docs/benchmarks.md, "The test
//! build"). Optimized builds do not share instances, so they leave this module out, as do builds
//! whose binaries choose another backend (`backend`'s rule).

use burn::backend::{Autodiff, NdArray};

use crate::parity;
use crate::pytorch::{ImportError, StateDict};

type Train = Autodiff<NdArray>;
type Device = burn::tensor::Device<NdArray>;
type Check<R> = fn(&StateDict, &Device) -> Result<R, ImportError>;

/// Function pointers to the instances, which makes rustc compile them into this library.
pub fn instances() -> impl Sized {
    std::hint::black_box((
        parity::check::<Train> as Check<parity::ParityReport>,
        parity::check_language_model::<Train> as Check<parity::LanguageModelReport>,
        parity::check_ctc_loss::<Train> as Check<parity::CtcReport>,
        parity::check_ctc_model::<Train> as Check<parity::CtcReport>,
    ))
}
