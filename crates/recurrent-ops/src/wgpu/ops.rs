//! The kernels as operations of Burn's `Wgpu` backend: each launch is registered in the fusion stream
//! as one custom operation, executed on the inner CubeCL backend's tensors.

use burn::backend::wgpu::{CubeBackend, CubeTensor, WgpuRuntime};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape};
use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_fusion::FusionRuntime;
use burn_fusion::stream::{Operation, OperationStreams};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};
use cubecl::prelude::*;

use super::kernels;

/// The backend inside `Wgpu`'s fusion layer, on whose tensors the kernels run.
type Inner = CubeBackend<WgpuRuntime, f32, i32, u32>;
type Runtime = FusionCubeRuntime<WgpuRuntime>;
type Handles = HandleContainer<<Runtime as FusionRuntime>::FusionHandle>;
/// A float tensor of `Wgpu`.
pub type Primitive = FloatTensor<burn::backend::Wgpu>;

/// Units per cube: every WebGPU device runs workgroups of 256.
const MAX_UNITS: usize = 256;

/// Bytes of workgroup memory every WebGPU device offers (`maxComputeWorkgroupStorageSize`).
const WORKGROUP_MEMORY: usize = 16 * 1024;

/// The sizes of one kernel call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The cell's comptime code.
    pub cell: u32,
    /// Sequences: one cube each.
    pub batch: usize,
    /// Time steps.
    pub time: usize,
    /// Hidden size H.
    pub hidden: usize,
}

impl Call {
    fn gates(&self) -> usize {
        kernels::gate_count(self.cell) as usize * self.hidden
    }

    fn has_cell_state(&self) -> bool {
        matches!(self.cell, kernels::LSTM | kernels::PEEPHOLE_LSTM)
    }

    /// Whether the state of a step fits one workgroup's memory (both kernels keep three `[H]`
    /// vectors and one `[G·H]` vector there), and there is anything to run.
    pub fn fits(&self) -> bool {
        (3 * self.hidden + self.gates()) * size_of::<f32>() <= WORKGROUP_MEMORY
            && self.batch > 0
            && self.time > 0
            && self.hidden > 0
    }

    /// `[batch, time + S, H]`.
    pub fn packed_shape(&self) -> Shape {
        let extra = 1 + usize::from(self.has_cell_state());
        Shape::new([self.batch, self.time + extra, self.hidden])
    }

    /// Values per step and sequence of the residuals (none for the tanh RNN).
    pub fn residual_width(&self) -> usize {
        match self.cell {
            kernels::LSTM | kernels::PEEPHOLE_LSTM => 6 * self.hidden,
            kernels::GRU => 4 * self.hidden,
            _ => 0,
        }
    }

    fn units(&self) -> u32 {
        self.gates().next_multiple_of(32).min(MAX_UNITS) as u32
    }

    fn cubes(&self) -> CubeCount {
        CubeCount::Static(self.batch as u32, 1, 1)
    }
}

/// A placeholder for an input or output a cell does not use (kernels take every tensor).
const UNUSED: [usize; 1] = [1];

fn uninit(client: &burn_fusion::client::GlobalFusionClient<Runtime>, shape: Shape) -> TensorIr {
    TensorIr::uninit(client.create_empty_handle(), shape, DType::F32)
}

fn empty(like: &CubeTensor<WgpuRuntime>, shape: Shape) -> CubeTensor<WgpuRuntime> {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, DType::F32)
}

/// Takes the inputs of a custom operation out of the handles, in order, as contiguous tensors.
fn inputs<const N: usize>(
    handles: &mut Handles,
    irs: &[TensorIr; N],
) -> [CubeTensor<WgpuRuntime>; N] {
    irs.each_ref()
        .map(|ir| into_contiguous(handles.get_float_tensor::<Inner>(ir)))
}

/// Registers a custom operation of `inputs` with `outputs` of the given shapes; returns them.
fn register<O: Operation<Runtime> + 'static, const N: usize, const M: usize>(
    name: &'static str,
    inputs: [Primitive; N],
    outputs: [Shape; M],
    operation: impl FnOnce(CustomOpIr) -> O,
) -> [Primitive; M] {
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(&inputs);
    let outputs = outputs.map(|shape| uninit(&client, shape));
    let desc = CustomOpIr::new(name, &inputs.map(|t| t.into_ir()), &outputs);
    client
        .register(streams, OperationIr::Custom(desc.clone()), operation(desc))
        .try_into()
        .expect("a custom operation returns the outputs it declares")
}

/// The forward kernel as an operation.
#[derive(Debug)]
struct Forward {
    desc: CustomOpIr,
    call: Call,
    keep_residuals: bool,
}

impl Operation<Runtime> for Forward {
    fn execute(&self, handles: &mut Handles) {
        let (input_irs, [packed_ir, residuals_ir]) = self.desc.as_fixed::<6, 2>();
        let [projection, weight_hh, bias_hn, peepholes, hidden, cell] = inputs(handles, input_irs);
        let call = self.call;
        let packed = empty(&projection, packed_ir.shape.clone());
        let residuals = empty(&projection, residuals_ir.shape.clone());
        let client = projection.client.clone();
        kernels::recurrence_forward::launch::<WgpuRuntime>(
            &client,
            call.cubes(),
            CubeDim::new_1d(call.units()),
            projection.into_tensor_arg(),
            weight_hh.into_tensor_arg(),
            bias_hn.into_tensor_arg(),
            peepholes.into_tensor_arg(),
            hidden.into_tensor_arg(),
            cell.into_tensor_arg(),
            packed.clone().into_tensor_arg(),
            residuals.clone().into_tensor_arg(),
            call.time as u32,
            call.cell,
            call.hidden as u32,
            self.keep_residuals,
        );
        handles.register_float_tensor::<Inner>(&packed_ir.id, packed);
        handles.register_float_tensor::<Inner>(&residuals_ir.id, residuals);
    }
}

/// The forward kernel on `[projection, weight_hh, bias_hn, peepholes, initial hidden, initial
/// cell]`; returns the packed output and the residuals (one unused element when not kept, or for
/// the tanh RNN).
pub fn forward(call: Call, keep_residuals: bool, inputs: [Primitive; 6]) -> [Primitive; 2] {
    let width = call.residual_width();
    let residuals = if keep_residuals && width > 0 {
        Shape::new([call.batch, call.time, width])
    } else {
        Shape::new(UNUSED)
    };
    register(
        "recurrent_layer_forward",
        inputs,
        [call.packed_shape(), residuals],
        |desc| Forward {
            desc,
            call,
            keep_residuals: keep_residuals && width > 0,
        },
    )
}

/// The backward kernel as an operation.
#[derive(Debug)]
struct Backward {
    desc: CustomOpIr,
    call: Call,
}

impl Operation<Runtime> for Backward {
    fn execute(&self, handles: &mut Handles) {
        let (input_irs, [gates_ir, hidden_n_ir, initial_ir]) = self.desc.as_fixed::<7, 3>();
        let [packed, residuals, grad, weight_hh, peepholes, hidden, cell] =
            inputs(handles, input_irs);
        let call = self.call;
        let grad_gates = empty(&packed, gates_ir.shape.clone());
        let grad_hidden_n = empty(&packed, hidden_n_ir.shape.clone());
        let grad_initial = empty(&packed, initial_ir.shape.clone());
        let client = packed.client.clone();
        kernels::recurrence_backward::launch::<WgpuRuntime>(
            &client,
            call.cubes(),
            CubeDim::new_1d(call.units()),
            packed.into_tensor_arg(),
            residuals.into_tensor_arg(),
            grad.into_tensor_arg(),
            weight_hh.into_tensor_arg(),
            peepholes.into_tensor_arg(),
            hidden.into_tensor_arg(),
            cell.into_tensor_arg(),
            grad_gates.clone().into_tensor_arg(),
            grad_hidden_n.clone().into_tensor_arg(),
            grad_initial.clone().into_tensor_arg(),
            call.time as u32,
            call.cell,
            call.hidden as u32,
        );
        handles.register_float_tensor::<Inner>(&gates_ir.id, grad_gates);
        handles.register_float_tensor::<Inner>(&hidden_n_ir.id, grad_hidden_n);
        handles.register_float_tensor::<Inner>(&initial_ir.id, grad_initial);
    }
}

/// The backward kernel on `[packed, residuals, grad of packed, weight_hh, peepholes, initial hidden,
/// initial cell]`; returns the gate gradients `[batch, time, G·H]`, the GRU's gradient of
/// `W_hn h + b_hn` `[batch, time, H]` (one unused element for the other cells), and the gradients
/// of the initial state `[batch, 2, H]`.
pub fn backward(call: Call, inputs: [Primitive; 7]) -> [Primitive; 3] {
    let hidden_n = if call.cell == kernels::GRU {
        Shape::new([call.batch, call.time, call.hidden])
    } else {
        Shape::new(UNUSED)
    };
    register(
        "recurrent_layer_backward",
        inputs,
        [
            Shape::new([call.batch, call.time, call.gates()]),
            hidden_n,
            Shape::new([call.batch, 2, call.hidden]),
        ],
        |desc| Backward { desc, call },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(cell: u32, hidden: usize) -> Call {
        Call {
            cell,
            batch: 2,
            time: 3,
            hidden,
        }
    }

    #[test]
    fn the_largest_hidden_sizes_fill_sixteen_kib_of_workgroup_memory() {
        // 3 vectors of H and one of G·H floats: 7H for the LSTMs, 6H for the GRU, 4H for the RNN.
        for (cell, largest) in [
            (kernels::LSTM, 585),
            (kernels::PEEPHOLE_LSTM, 585),
            (kernels::GRU, 682),
            (kernels::RNN, 1024),
        ] {
            assert!(call(cell, largest).fits(), "cell {cell}, H = {largest}");
            assert!(
                !call(cell, largest + 1).fits(),
                "cell {cell}, H = {}",
                largest + 1
            );
        }
    }

    #[test]
    fn empty_calls_do_not_fit() {
        assert!(!call(kernels::GRU, 0).fits());
        assert!(
            !Call {
                batch: 0,
                ..call(kernels::GRU, 8)
            }
            .fits()
        );
        assert!(
            !Call {
                time: 0,
                ..call(kernels::GRU, 8)
            }
            .fits()
        );
    }

    #[test]
    fn cubes_run_whole_warps_and_at_most_256_units() {
        assert_eq!(call(kernels::RNN, 10).units(), 32);
        assert_eq!(call(kernels::LSTM, 10).units(), 64);
        assert_eq!(call(kernels::LSTM, 100).units(), 256);
        assert!(matches!(
            call(kernels::GRU, 64).cubes(),
            CubeCount::Static(2, 1, 1)
        ));
    }

    #[test]
    fn packed_and_residual_shapes_follow_the_cell() {
        assert_eq!(call(kernels::LSTM, 5).packed_shape(), Shape::new([2, 5, 5]));
        assert_eq!(call(kernels::GRU, 5).packed_shape(), Shape::new([2, 4, 5]));
        assert_eq!(call(kernels::PEEPHOLE_LSTM, 5).residual_width(), 30);
        assert_eq!(call(kernels::GRU, 5).residual_width(), 20);
        assert_eq!(call(kernels::RNN, 5).residual_width(), 0);
    }
}
