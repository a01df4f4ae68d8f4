//! The one place where the binaries name a concrete Burn backend, chosen by cargo feature, and open
//! its device. Everything else in the workspace is generic over `B: Backend`.
//!
//! When several backend features are on, wgpu wins over flex, and flex over ndarray (so
//! `--features wgpu` needs no `--no-default-features`).

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu")))]
compile_error!("enable a backend feature: ndarray (default), flex or wgpu");

mod device;
mod memory;
#[cfg(feature = "wgpu")]
mod wgpu_probe;

pub use device::{DeviceError, DeviceKind, device};
pub use memory::retain_freed_memory;

#[cfg(feature = "wgpu")]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Wgpu;
    /// Its name, as runs record it.
    pub const NAME: &str = "wgpu";
}

#[cfg(all(feature = "flex", not(feature = "wgpu")))]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Flex;
    /// Its name, as runs record it.
    pub const NAME: &str = "flex";
}

#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "flex"))))]
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
