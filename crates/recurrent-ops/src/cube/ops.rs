//! The kernels as operations of a fused CubeCL backend (`Fusion<CubeBackend<R, f32, I, BT>>`, which
//! is what Burn's `Wgpu` and `Cuda` are): each launch is registered in the fusion stream as one custom
//! operation, executed on the inner CubeCL backend's tensors.

use std::marker::PhantomData;

use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Shape};
use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, IntElement};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

use super::kernels;
use super::plan::Call;

/// The backend inside the fusion layer, on whose tensors the kernels run.
type Inner<R, I, BT> = CubeBackend<R, f32, I, BT>;
/// A fused CubeCL backend of f32 floats: the backends the kernels serve.
pub type Cube<R, I, BT> = Fusion<Inner<R, I, BT>>;
type Handles<R> = HandleContainer<<FusionCubeRuntime<R> as FusionRuntime>::FusionHandle>;
/// A float tensor of a fused CubeCL backend.
pub type Primitive<R, I, BT> = FloatTensor<Cube<R, I, BT>>;

/// The type parameters every operation carries for the inner backend.
type Marker<R, I, BT> = PhantomData<fn() -> (R, I, BT)>;

/// A placeholder for an input or output a cell does not use (kernels take every tensor).
const UNUSED: [usize; 1] = [1];

fn empty<R: CubeRuntime>(like: &CubeTensor<R>, shape: Shape) -> CubeTensor<R> {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, DType::F32)
}

/// Takes the inputs of a custom operation out of the handles, in order, as contiguous tensors.
fn inputs<R: CubeRuntime, I: IntElement, BT: BoolElement, const N: usize>(
    handles: &mut Handles<R>,
    irs: &[TensorIr; N],
) -> [CubeTensor<R>; N] {
    irs.each_ref()
        .map(|ir| into_contiguous(handles.get_float_tensor::<Inner<R, I, BT>>(ir)))
}

/// Registers a custom operation of `inputs` with `outputs` of the given shapes; returns them.
fn register<R, I, BT, O, const N: usize, const M: usize>(
    name: &'static str,
    inputs: [Primitive<R, I, BT>; N],
    outputs: [Shape; M],
    operation: impl FnOnce(CustomOpIr) -> O,
) -> [Primitive<R, I, BT>; M]
where
    R: CubeRuntime,
    I: IntElement,
    BT: BoolElement,
    O: Operation<FusionCubeRuntime<R>> + 'static,
{
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(&inputs);
    let outputs =
        outputs.map(|shape| TensorIr::uninit(client.create_empty_handle(), shape, DType::F32));
    let desc = CustomOpIr::new(name, &inputs.map(|t| t.into_ir()), &outputs);
    client
        .register(streams, OperationIr::Custom(desc.clone()), operation(desc))
        .try_into()
        .expect("a custom operation returns the outputs it declares")
}

/// The forward kernel as an operation.
#[derive(Debug)]
struct Forward<R, I, BT> {
    desc: CustomOpIr,
    call: Call,
    keep_residuals: bool,
    _backend: Marker<R, I, BT>,
}

impl<R: CubeRuntime, I: IntElement, BT: BoolElement> Operation<FusionCubeRuntime<R>>
    for Forward<R, I, BT>
{
    fn execute(&self, handles: &mut Handles<R>) {
        let (input_irs, [packed_ir, residuals_ir]) = self.desc.as_fixed::<6, 2>();
        let [projection, weight_hh, bias_hn, peepholes, hidden, cell] =
            inputs::<R, I, BT, 6>(handles, input_irs);
        let call = self.call;
        let packed = empty(&projection, packed_ir.shape.clone());
        let residuals = empty(&projection, residuals_ir.shape.clone());
        let client = projection.client.clone();
        // Unchecked launches skip CubeCL's bounds checks. `Call::plan` sizes the cube, its workgroup
        // memory and the registers; rows past the batch read the last sequence and write nothing; the
        // inputs' shapes were checked against the call (`check_shapes` for the weights and state,
        // Burn's own operations for the projection and gradients).
        // SAFETY: so every index the kernel forms is in bounds; the outputs are allocated here.
        unsafe {
            kernels::recurrence_forward::launch_unchecked::<R>(
                &client,
                call.cubes(),
                call.cube_dim(),
                projection.into_tensor_arg(),
                weight_hh.into_tensor_arg(),
                bias_hn.into_tensor_arg(),
                peepholes.into_tensor_arg(),
                hidden.into_tensor_arg(),
                cell.into_tensor_arg(),
                packed.clone().into_tensor_arg(),
                residuals.clone().into_tensor_arg(),
                call.time as u32,
                call.batch as u32,
                call.cell,
                call.hidden as u32,
                call.sequences as u32,
                self.keep_residuals,
                call.weights,
            );
        }
        handles.register_float_tensor::<Inner<R, I, BT>>(&packed_ir.id, packed);
        handles.register_float_tensor::<Inner<R, I, BT>>(&residuals_ir.id, residuals);
    }
}

/// The forward kernel on `[projection, weight_hh, bias_hn, peepholes, initial hidden, initial
/// cell]`; returns the packed output and the residuals (one unused element when not kept, or for
/// the tanh RNN).
pub fn forward<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    call: Call,
    keep_residuals: bool,
    inputs: [Primitive<R, I, BT>; 6],
) -> [Primitive<R, I, BT>; 2] {
    let width = call.residual_width();
    let residuals = if keep_residuals && width > 0 {
        Shape::new([call.batch, call.time, width])
    } else {
        Shape::new(UNUSED)
    };
    register::<R, I, BT, Forward<R, I, BT>, 6, 2>(
        "recurrent_layer_forward",
        inputs,
        [Shape::new(call.packed_shape()), residuals],
        |desc| Forward {
            desc,
            call,
            keep_residuals: keep_residuals && width > 0,
            _backend: PhantomData,
        },
    )
}

/// The backward kernel as an operation.
#[derive(Debug)]
struct Backward<R, I, BT> {
    desc: CustomOpIr,
    call: Call,
    _backend: Marker<R, I, BT>,
}

impl<R: CubeRuntime, I: IntElement, BT: BoolElement> Operation<FusionCubeRuntime<R>>
    for Backward<R, I, BT>
{
    fn execute(&self, handles: &mut Handles<R>) {
        let (input_irs, [gates_ir, hidden_n_ir, initial_ir]) = self.desc.as_fixed::<7, 3>();
        let [
            packed,
            residuals,
            grad,
            weight_hh_t,
            peepholes,
            hidden,
            cell,
        ] = inputs::<R, I, BT, 7>(handles, input_irs);
        let call = self.call;
        let grad_gates = empty(&packed, gates_ir.shape.clone());
        let grad_hidden_n = empty(&packed, hidden_n_ir.shape.clone());
        let grad_initial = empty(&packed, initial_ir.shape.clone());
        let client = packed.client.clone();
        // SAFETY: as for the forward launch: the plan bounds every index, the gradients are
        // allocated here and the inputs have the call's shapes.
        unsafe {
            kernels::recurrence_backward::launch_unchecked::<R>(
                &client,
                call.cubes(),
                call.cube_dim(),
                packed.into_tensor_arg(),
                residuals.into_tensor_arg(),
                grad.into_tensor_arg(),
                weight_hh_t.into_tensor_arg(),
                peepholes.into_tensor_arg(),
                hidden.into_tensor_arg(),
                cell.into_tensor_arg(),
                grad_gates.clone().into_tensor_arg(),
                grad_hidden_n.clone().into_tensor_arg(),
                grad_initial.clone().into_tensor_arg(),
                call.time as u32,
                call.batch as u32,
                call.cell,
                call.hidden as u32,
                call.sequences as u32,
                call.weights,
            );
        }
        handles.register_float_tensor::<Inner<R, I, BT>>(&gates_ir.id, grad_gates);
        handles.register_float_tensor::<Inner<R, I, BT>>(&hidden_n_ir.id, grad_hidden_n);
        handles.register_float_tensor::<Inner<R, I, BT>>(&initial_ir.id, grad_initial);
    }
}

/// The backward kernel on `[packed, residuals, grad of packed, weight_hh transposed ([G·H, H]),
/// peepholes, initial hidden, initial cell]`; returns the gate gradients `[batch, time, G·H]`, the GRU's gradient of
/// `W_hn h + b_hn` `[batch, time, H]` (one unused element for the other cells), and the gradients
/// of the initial state `[batch, 2, H]`.
pub fn backward<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    call: Call,
    inputs: [Primitive<R, I, BT>; 7],
) -> [Primitive<R, I, BT>; 3] {
    let hidden_n = if call.cell == kernels::GRU {
        Shape::new([call.batch, call.time, call.hidden])
    } else {
        Shape::new(UNUSED)
    };
    register::<R, I, BT, Backward<R, I, BT>, 7, 3>(
        "recurrent_layer_backward",
        inputs,
        [
            Shape::new([call.batch, call.time, call.gates()]),
            hidden_n,
            Shape::new([call.batch, 2, call.hidden]),
        ],
        |desc| Backward {
            desc,
            call,
            _backend: PhantomData,
        },
    )
}
