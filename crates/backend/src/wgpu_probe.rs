//! Listing wgpu adapters the way Burn's wgpu runtime (cubecl-wgpu) selects them, before it does.

use burn::backend::wgpu::WgpuDevice;
use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
use wgpu::DeviceType;

use crate::{DeviceError, DeviceKind};

/// The device cubecl-wgpu would open for `kind`, after checking that an adapter of that kind exists.
pub fn open(kind: DeviceKind) -> Result<WgpuDevice, DeviceError> {
    let api = AutoGraphicsApi::backend();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: api.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters: Vec<wgpu::AdapterInfo> =
        pollster::block_on(instance.enumerate_adapters(api.into()))
            .iter()
            .map(|adapter| adapter.get_info())
            .collect();
    let (wanted, device_type, device) = match kind {
        DeviceKind::Auto => ("adapter", None, WgpuDevice::DefaultDevice),
        DeviceKind::Discrete => (
            "discrete GPU",
            Some(DeviceType::DiscreteGpu),
            WgpuDevice::DiscreteGpu(0),
        ),
        DeviceKind::Integrated => (
            "integrated GPU",
            Some(DeviceType::IntegratedGpu),
            WgpuDevice::IntegratedGpu(0),
        ),
        DeviceKind::Virtual => (
            "virtual GPU",
            Some(DeviceType::VirtualGpu),
            WgpuDevice::VirtualGpu(0),
        ),
        DeviceKind::Cpu => ("CPU adapter", Some(DeviceType::Cpu), WgpuDevice::Cpu),
    };
    // cubecl-wgpu falls back to an adapter of type `Other` when none of the wanted type exists.
    let usable = adapters.iter().any(|info| match device_type {
        None => true,
        Some(wanted) => info.device_type == wanted || info.device_type == DeviceType::Other,
    });
    if usable {
        return Ok(device);
    }
    let present = if adapters.is_empty() {
        "none (is a Vulkan loader and driver installed?)".to_string()
    } else {
        adapters
            .iter()
            .map(|info| format!("{} ({:?}, {})", info.name, info.device_type, info.driver))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(DeviceError::NoAdapter {
        wanted: wanted.to_string(),
        api: format!("{api:?}"),
        present,
    })
}
