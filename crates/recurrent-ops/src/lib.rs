//! One operation per recurrent layer and sequence, for any Burn backend.
//!
//! [`RecurrentBackend`] is a backend extension (Burn's mechanism for custom operations): one method runs
//! a whole layer of any [`Cell`] over a whole sequence. Its default body is [`fallback`], the layer
//! written step by step in Burn tensor operations, so every backend (wgpu included) works unchanged and
//! that code stays the reference the native kernels are tested against. NdArray and Flex override it
//! with the fused CPU kernels of [`cpu`]: one matrix product for the input projection of all steps, one
//! `[batch, H] × [H, G·H]` product and one pass over the gates per step, and a hand-written backward
//! through time, which `Autodiff<B>` records as a single node per layer. The GPU backends (features
//! `wgpu` and `cuda`: any fused CubeCL backend) override it with CubeCL kernels that run a whole
//! sequence per launch, laid out from the device's own limits. [`set_fused_kernels`] turns every
//! backend's kernels off, for benchmarks of the fallback.
//!
//! Code generic over any `B: Backend` runs a layer through [`lengths::layer`] (or
//! [`lengths::final_state`]), which finds the kernels of `B` when this crate has them
//! ([`has_kernels`]) and runs the fallback on any other backend: LibTorch, candle, a CubeCL backend
//! without fusion, or one of your own, which the orphan rule would keep from implementing
//! [`RecurrentBackend`] for Burn's types.

mod autodiff;
mod backend;
mod cell;
pub mod cpu;
#[cfg(feature = "cube")]
mod cube;
mod dispatch;
pub mod fallback;
pub mod join;
mod layer;
pub mod lengths;

pub use backend::{
    FusedLayer, FusedOutput, LayerGrads, RecurrentAutodiffBackend, RecurrentBackend,
    fused_kernels_enabled, pack, packed_extra_rows, set_fused_kernels, unpack,
};
pub use cell::Cell;
pub use dispatch::has_kernels;
pub use layer::{LayerWeights, RecurrentState, Sequence};
