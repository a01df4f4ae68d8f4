//! The one place where the binaries name a concrete Burn backend, chosen by cargo feature, and open
//! its device. Everything else in the workspace is generic over `B: Backend`.
//!
//! When several backend features are on, cuda wins over wgpu, wgpu over flex, and flex over ndarray
//! (so `--features wgpu` or `--features cuda` needs no `--no-default-features`).

#[cfg(not(any(
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "cuda"
)))]
compile_error!("enable a backend feature: ndarray (default), flex, wgpu or cuda");

#[cfg(feature = "cuda")]
mod cuda_probe;
mod device;
mod memory;
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod wgpu_probe;

pub use device::{DeviceError, DeviceKind, device};
pub use memory::retain_freed_memory;

#[cfg(feature = "cuda")]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Cuda;
    /// Its name, as runs record it.
    pub const NAME: &str = "cuda";
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Wgpu;
    /// Its name, as runs record it.
    pub const NAME: &str = "wgpu";
}

#[cfg(all(feature = "flex", not(any(feature = "wgpu", feature = "cuda"))))]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Flex;
    /// Its name, as runs record it.
    pub const NAME: &str = "flex";
}

#[cfg(all(
    feature = "ndarray",
    not(any(feature = "wgpu", feature = "flex", feature = "cuda"))
))]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::NdArray;
    /// Its name, as runs record it.
    pub const NAME: &str = "ndarray";
}

pub use chosen::{Inference, NAME};

/// The training backend: [`Inference`] with automatic differentiation.
pub type Training = burn::backend::Autodiff<Inference>;

/// The device type of both backends.
pub type Device = burn::tensor::Device<Inference>;
