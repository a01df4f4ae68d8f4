//! Which device to run on, and opening it with an error message instead of a panic.

use crate::Device;

/// The kind of device to run on, as `--device` spells it. Only the wgpu backend has a choice; the CPU
/// backends accept `auto` and `cpu`, CUDA `auto` and `discrete` (its first device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceKind {
    /// The backend's default: the best GPU wgpu finds (any adapter if there is no GPU); CUDA's first
    /// device; the CPU for ndarray and flex.
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
    /// A kind of device CUDA does not drive was asked of the CUDA backend.
    #[error(
        "--device {kind} is not a CUDA device; the cuda backend runs on NVIDIA GPUs (--device auto or discrete). For a CPU, build without `--features cuda` (ndarray) or with `--features wgpu` and Mesa's lavapipe"
    )]
    NotACudaDevice {
        /// The kind asked for.
        kind: &'static str,
    },
    /// The CUDA driver could not be loaded, or reports no device.
    #[error(
        "no CUDA device: {why}. The cuda backend needs an NVIDIA GPU and its driver (libcuda.so) at run time, and NVRTC (libnvrtc.so, from the CUDA toolkit or the nvidia-cuda-nvrtc package) to compile its kernels; without them, build with `--features wgpu` or a CPU backend"
    )]
    NoCudaDevice {
        /// What the driver said.
        why: String,
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
    #[cfg(feature = "cuda")]
    {
        crate::cuda_probe::open(kind)
    }
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    {
        crate::wgpu_probe::open(kind)
    }
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
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
