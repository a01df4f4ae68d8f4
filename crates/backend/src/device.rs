//! Which device to run on, and opening it with an error message instead of a panic.

use crate::Device;

/// The kind of device to run on, as `--device` spells it. Only the wgpu backend has a choice; the CPU
/// backends accept `auto` and `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceKind {
    /// The backend's default: the best GPU wgpu finds (any adapter if there is no GPU); the CPU for
    /// ndarray and flex.
    #[default]
    Auto,
    /// The first discrete GPU.
    Discrete,
    /// The first integrated GPU.
    Integrated,
    /// The first virtual GPU (a VM's, for instance).
    Virtual,
    /// A CPU adapter: for wgpu, a software driver such as Mesa's lavapipe.
    Cpu,
}

impl DeviceKind {
    /// The name `--device` takes.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Auto => "auto",
            DeviceKind::Discrete => "discrete",
            DeviceKind::Integrated => "integrated",
            DeviceKind::Virtual => "virtual",
            DeviceKind::Cpu => "cpu",
        }
    }
}

/// Why no device could be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A GPU kind was asked of a CPU backend.
    #[error(
        "--device {kind} needs the wgpu backend, but this binary was built with {backend}; rebuild with `--features wgpu`, or drop --device"
    )]
    NotAGpuBackend {
        /// The kind asked for.
        kind: &'static str,
        /// The backend built in.
        backend: &'static str,
    },
    /// wgpu found no adapter of the kind asked for.
    #[error(
        "no {wanted} found by wgpu ({api} API); adapters present: {present}. Install a GPU driver, or Mesa's software Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`) and pass `--device cpu`, or use a CPU backend: build without `--features wgpu` (ndarray) or with `--features flex`"
    )]
    NoAdapter {
        /// What was looked for, in words.
        wanted: String,
        /// The graphics API searched.
        api: String,
        /// The adapters that exist, with their kinds.
        present: String,
    },
}

/// Opens the device of the built-in backend. For wgpu, the adapters are listed first, so that a
/// machine without a usable one gets a [`DeviceError`] naming what is there, not a panic from deep
/// inside the runtime.
pub fn device(kind: DeviceKind) -> Result<Device, DeviceError> {
    #[cfg(feature = "wgpu")]
    {
        crate::wgpu_probe::open(kind)
    }
    #[cfg(not(feature = "wgpu"))]
    {
        match kind {
            DeviceKind::Auto | DeviceKind::Cpu => Ok(Default::default()),
            other => Err(DeviceError::NotAGpuBackend {
                kind: other.name(),
                backend: crate::NAME,
            }),
        }
    }
}
