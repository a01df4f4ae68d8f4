//! NdArray and Flex run the CPU kernels: their tensors' f32 buffers are read in place when
//! contiguous, and the kernels' outputs become tensors without a copy.

use burn::backend::flex::FlexTensor;
use burn::backend::ndarray::{NdArrayTensor, SharedArray};
use burn::backend::{Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};

use super::{Dims, Initial, Lengths, Params, Saved, residual_width};
use crate::backend::{fused_applies, packed_extra_rows};
use crate::fallback;
use crate::{
    Cell, FusedLayer, FusedOutput, LayerGrads, LayerWeights, RecurrentBackend, RecurrentState,
    Sequence,
};

/// A CPU backend whose float tensors can lend their f32 contents.
trait HostBackend: Backend {
    /// Owns (or shares) the contents of one tensor.
    type Buffer;

    /// The f32 contents of `tensor`, in row-major order; a copy only when the tensor is not
    /// contiguous or not f32.
    fn buffer<const D: usize>(tensor: &Tensor<Self, D>) -> Self::Buffer;

    /// The values of a buffer.
    fn values(buffer: &Self::Buffer) -> &[f32];
}

/// The contents of an NdArray tensor.
enum NdArrayBuffer {
    Shared(SharedArray<f32>),
    Copied(Vec<f32>),
}

impl HostBackend for NdArray {
    type Buffer = NdArrayBuffer;

    fn buffer<const D: usize>(tensor: &Tensor<Self, D>) -> NdArrayBuffer {
        match tensor.clone().into_primitive().tensor() {
            NdArrayTensor::F32(storage) => {
                let array = storage.into_shared();
                if array.is_standard_layout() {
                    NdArrayBuffer::Shared(array)
                } else {
                    NdArrayBuffer::Copied(array.iter().copied().collect())
                }
            }
            other => NdArrayBuffer::Copied(copy_as_f32::<Self, D>(other)),
        }
    }

    fn values(buffer: &NdArrayBuffer) -> &[f32] {
        match buffer {
            NdArrayBuffer::Shared(array) => array
                .as_slice()
                .expect("a standard-layout array is one slice"),
            NdArrayBuffer::Copied(values) => values,
        }
    }
}

impl HostBackend for Flex {
    type Buffer = FlexTensor;

    fn buffer<const D: usize>(tensor: &Tensor<Self, D>) -> FlexTensor {
        let primitive = tensor.clone().into_primitive().tensor();
        if primitive.dtype() != DType::F32 {
            let values = copy_as_f32::<Self, D>(primitive.clone());
            return FlexTensor::from_data(TensorData::new(
                values,
                primitive.layout().shape().clone(),
            ));
        }
        if primitive.as_slice::<f32>().is_some() {
            primitive
        } else {
            primitive.to_contiguous()
        }
    }

    fn values(buffer: &FlexTensor) -> &[f32] {
        buffer
            .as_slice::<f32>()
            .expect("a contiguous f32 tensor is one slice")
    }
}

/// The values of a float primitive converted to f32 (only for element types the kernels don't run).
fn copy_as_f32<B: Backend, const D: usize>(primitive: B::FloatTensorPrimitive) -> Vec<f32> {
    Tensor::<B, D>::from_primitive(TensorPrimitive::Float(primitive))
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("converted to f32")
}

/// The buffers of everything one layer call reads.
struct Buffers<B: HostBackend> {
    cell: Cell,
    dims: Dims,
    input: B::Buffer,
    weight_ih: B::Buffer,
    weight_hh: B::Buffer,
    bias_ih: Option<B::Buffer>,
    bias_hh: Option<B::Buffer>,
    peepholes: Option<[B::Buffer; 3]>,
    hidden: Option<B::Buffer>,
    cell_state: Option<B::Buffer>,
}

impl<B: HostBackend> Buffers<B> {
    fn of(layer: &FusedLayer<B>) -> Self {
        let w = &layer.weights;
        let [batch, time, input] = layer.input.dims();
        Buffers {
            cell: w.cell,
            dims: Dims {
                batch,
                time,
                input,
                hidden: w.hidden_size(),
            },
            input: B::buffer(&layer.input),
            weight_ih: B::buffer(&w.weight_ih),
            weight_hh: B::buffer(&w.weight_hh),
            bias_ih: w.bias_ih.as_ref().map(B::buffer),
            bias_hh: w.bias_hh.as_ref().map(B::buffer),
            peepholes: w.peepholes.as_ref().map(|p| p.each_ref().map(B::buffer)),
            hidden: layer.state.as_ref().map(|s| B::buffer(&s.hidden)),
            cell_state: layer
                .state
                .as_ref()
                .and_then(|s| s.cell.as_ref())
                .filter(|_| w.cell.has_cell_state())
                .map(B::buffer),
        }
    }

    fn params(&self) -> Params<'_> {
        Params {
            cell: self.cell,
            weight_ih: B::values(&self.weight_ih),
            weight_hh: B::values(&self.weight_hh),
            bias_ih: self.bias_ih.as_ref().map(B::values),
            bias_hh: self.bias_hh.as_ref().map(B::values),
            peepholes: self.peepholes.as_ref().map(|p| p.each_ref().map(B::values)),
        }
    }

    fn initial(&self) -> Initial<'_> {
        Initial {
            hidden: self.hidden.as_ref().map(B::values),
            cell: self.cell_state.as_ref().map(B::values),
        }
    }
}

fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Runs the forward kernel over `layer`: its sizes and the kernel's buffers.
fn run_forward<B: HostBackend>(
    layer: &FusedLayer<B>,
    keep_residuals: bool,
    outputs: bool,
) -> (Dims, super::Forward) {
    let buffers = Buffers::of(layer);
    let out = super::forward(
        buffers.dims,
        &buffers.params(),
        B::values(&buffers.input),
        buffers.initial(),
        Lengths(layer.lengths.as_deref()),
        keep_residuals,
        outputs,
    );
    (buffers.dims, out)
}

fn fused_forward<B: HostBackend>(layer: &FusedLayer<B>, keep_residuals: bool) -> FusedOutput<B> {
    let (
        Dims {
            batch,
            time,
            hidden,
            ..
        },
        out,
    ) = run_forward(layer, keep_residuals, true);
    let cell = layer.weights.cell;
    let device = layer.weights.device();
    let width = residual_width(cell, hidden);
    FusedOutput {
        packed: tensor(
            out.packed,
            [batch, time + packed_extra_rows(cell), hidden],
            &device,
        ),
        residuals: (keep_residuals && width > 0)
            .then(|| tensor(out.residuals, [batch, time, width], &device)),
    }
}

/// Inference: through the kernel where it applies (see [`fused_run`]), else the [`fallback`].
fn inference<B: HostBackend + RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
    outputs: bool,
) -> (Option<Sequence<B>>, RecurrentState<B>) {
    if !fused_applies::<B, B>(weights, &input) {
        let (sequence, state) = match lengths {
            None => fallback::layer(weights, input, state),
            Some(lengths) => fallback::masked_layer(weights, input, state, lengths),
        };
        return (Some(sequence), state);
    }
    let layer = FusedLayer {
        weights: weights.clone(),
        input: input.into_whole(&weights.device()),
        state,
        lengths: lengths.map(<[usize]>::to_vec),
    };
    let (sequence, state) = fused_run(&layer, outputs);
    (sequence.map(Sequence::Whole), state)
}

/// Inference through the kernel, the packed output split on the host (whole rows copied) into the
/// per-step outputs and the final state; `outputs: false` makes the final state alone.
fn fused_run<B: HostBackend>(
    layer: &FusedLayer<B>,
    outputs: bool,
) -> (Option<Tensor<B, 3>>, RecurrentState<B>) {
    let (dims, out) = run_forward(layer, false, outputs);
    let Dims {
        batch,
        time,
        hidden,
        ..
    } = dims;
    let cell = layer.weights.cell;
    let device = layer.weights.device();
    let (row, final_at) = dims.output_layout(cell, outputs);
    let mut sequence = Vec::with_capacity(batch * final_at);
    let mut finals: Vec<Vec<f32>> = (0..packed_extra_rows(cell))
        .map(|_| Vec::with_capacity(batch * hidden))
        .collect();
    for values in out.packed.chunks_exact(row.max(1)).take(batch) {
        sequence.extend_from_slice(&values[..final_at]);
        for (s, last) in finals.iter_mut().enumerate() {
            last.extend_from_slice(&values[final_at + s * hidden..][..hidden]);
        }
    }
    let mut finals = finals
        .into_iter()
        .map(|v| tensor(v, [batch, hidden], &device));
    let state = RecurrentState {
        hidden: finals.next().expect("the final hidden state"),
        cell: finals.next(),
    };
    let sequence = outputs.then(|| tensor(sequence, [batch, time, hidden], &device));
    (sequence, state)
}

fn fused_backward<B: HostBackend>(
    layer: &FusedLayer<B>,
    output: &FusedOutput<B>,
    grad: Tensor<B, 3>,
    input_grad: bool,
) -> LayerGrads<B> {
    let buffers = Buffers::of(layer);
    let dims = buffers.dims;
    let device = layer.weights.device();
    let packed = B::buffer(&output.packed);
    let residuals = output.residuals.as_ref().map(B::buffer);
    let grad = B::buffer(&grad);
    let g = super::backward(
        dims,
        &buffers.params(),
        B::values(&buffers.input),
        buffers.initial(),
        Lengths(layer.lengths.as_deref()),
        Saved {
            packed: B::values(&packed),
            residuals: residuals.as_ref().map_or(&[], B::values),
        },
        B::values(&grad),
        input_grad,
    );
    let gh = buffers.cell.gates() * dims.hidden;
    let h = dims.hidden;
    LayerGrads {
        input: g
            .input
            .map(|v| tensor(v, [dims.batch, dims.time, dims.input], &device)),
        weight_ih: tensor(g.weight_ih, [dims.input, gh], &device),
        weight_hh: tensor(g.weight_hh, [h, gh], &device),
        bias_ih: g.bias_ih.map(|v| tensor(v, [gh], &device)),
        bias_hh: g.bias_hh.map(|v| tensor(v, [gh], &device)),
        peepholes: g.peepholes.map(|p| p.map(|v| tensor(v, [h], &device))),
        hidden: g.hidden.map(|v| tensor(v, [dims.batch, h], &device)),
        cell: g.cell.map(|v| tensor(v, [dims.batch, h], &device)),
    }
}

macro_rules! cpu_backend {
    ($backend:ty) => {
        impl RecurrentBackend for $backend {
            fn recurrent_layer(
                weights: &LayerWeights<Self>,
                input: Sequence<Self>,
                state: Option<RecurrentState<Self>>,
            ) -> (Sequence<Self>, RecurrentState<Self>) {
                let (sequence, state) = inference(weights, input, state, None, true);
                (sequence.expect("asked for the outputs"), state)
            }

            fn recurrent_layer_final(
                weights: &LayerWeights<Self>,
                input: Sequence<Self>,
                state: Option<RecurrentState<Self>>,
            ) -> RecurrentState<Self> {
                inference(weights, input, state, None, false).1
            }

            fn fused_runs(weights: &LayerWeights<Self>, input: &Sequence<Self>) -> bool {
                fused_applies::<Self, Self>(weights, input)
            }

            fn fused_layer_lengths_available(_cell: Cell, dtype: DType) -> bool {
                dtype == DType::F32
            }

            fn recurrent_layer_lengths(
                weights: &LayerWeights<Self>,
                input: Sequence<Self>,
                state: Option<RecurrentState<Self>>,
                lengths: &[usize],
            ) -> (Sequence<Self>, RecurrentState<Self>) {
                let (sequence, state) = inference(weights, input, state, Some(lengths), true);
                (sequence.expect("asked for the outputs"), state)
            }

            fn fused_layer_available(_cell: Cell, dtype: DType) -> bool {
                dtype == DType::F32
            }

            fn fused_layer_forward(
                layer: &FusedLayer<Self>,
                keep_residuals: bool,
            ) -> FusedOutput<Self> {
                fused_forward(layer, keep_residuals)
            }

            fn fused_layer_backward(
                layer: &FusedLayer<Self>,
                output: &FusedOutput<Self>,
                grad: Tensor<Self, 3>,
                input_grad: bool,
            ) -> LayerGrads<Self> {
                fused_backward(layer, output, grad, input_grad)
            }
        }
    };
}

cpu_backend!(NdArray);
cpu_backend!(Flex);
