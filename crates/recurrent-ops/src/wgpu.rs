//! wgpu runs the tensor-op fallback (a fused CubeCL kernel is future work).

use crate::RecurrentBackend;

impl RecurrentBackend for burn::backend::Wgpu {}
