//! The one place where the inference binary names a concrete backend, chosen by cargo feature.
//! When several are enabled (`--features wgpu` keeps the default `ndarray`), wgpu wins over flex,
//! and flex over ndarray.

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu")))]
compile_error!("enable a backend feature: ndarray (default), flex or wgpu");

#[cfg(feature = "wgpu")]
mod chosen {
    /// Inference backend.
    pub type Backend = burn::backend::Wgpu;
    /// Its name.
    pub const NAME: &str = "wgpu";
}

#[cfg(all(feature = "flex", not(feature = "wgpu")))]
mod chosen {
    /// Inference backend.
    pub type Backend = burn::backend::Flex;
    /// Its name.
    pub const NAME: &str = "flex";
}

#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "flex"))))]
mod chosen {
    /// Inference backend.
    pub type Backend = burn::backend::NdArray;
    /// Its name.
    pub const NAME: &str = "ndarray";
}

pub use chosen::{Backend, NAME};
