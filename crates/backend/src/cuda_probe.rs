//! Asking the CUDA driver for its devices before Burn's CUDA runtime opens one (which panics when
//! there is no driver or no device).

use std::panic;

use burn::backend::cuda::CudaDevice;

use crate::{DeviceError, DeviceKind};

/// CUDA's first device, after checking that the driver loads and has one.
pub fn open(kind: DeviceKind) -> Result<CudaDevice, DeviceError> {
    match kind {
        DeviceKind::Auto | DeviceKind::Discrete => {}
        other => return Err(DeviceError::NotACudaDevice { kind: other.name() }),
    }
    match device_count() {
        Ok(0) => Err(DeviceError::NoCudaDevice {
            why: "the driver reports no device".to_string(),
        }),
        Ok(_) => Ok(CudaDevice { index: 0 }),
        Err(why) => Err(DeviceError::NoCudaDevice { why }),
    }
}

/// The driver's device count. cudarc loads `libcuda.so` on first use and panics when it is missing;
/// that panic is caught here (its message silenced) and returned as the reason.
fn device_count() -> Result<usize, String> {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(|| {
        cudarc::driver::result::init()?;
        cudarc::driver::result::device::get_count()
    });
    panic::set_hook(hook);
    match result {
        Ok(Ok(count)) => Ok(usize::try_from(count).unwrap_or(0)),
        Ok(Err(error)) => Err(format!("the driver answered {error:?}")),
        Err(payload) => Err(payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the driver library could not be loaded".to_string())),
    }
}
