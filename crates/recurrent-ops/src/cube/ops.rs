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
use cubecl::prelude::{CubeCount, CubeDim};

use super::kernels;
use super::plan::{Call, ParameterLaunch};

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

/// Features the forward and parameter-gradient kernels read from the input at a time: the widest
/// vector the device loads that divides the features and the step and sequence strides, with the
/// features contiguous and the start aligned to it (else 1). lavapipe runs each read in a loop as a
/// pass over its SIMD lanes, so a vector of 4 costs about what one float does.
fn input_vector<R: CubeRuntime>(input: &CubeTensor<R>, features: usize) -> usize {
    let strides = input.meta.strides();
    let offset = input.handle.offset_start.unwrap_or(0) as usize;
    let fits = |width: usize| {
        strides[2] == 1
            && features.is_multiple_of(width)
            && strides[0].is_multiple_of(width)
            && strides[1].is_multiple_of(width)
            && offset.is_multiple_of(width * size_of::<f32>())
    };
    input
        .client
        .io_optimized_vector_sizes(size_of::<f32>())
        .filter(|&width| width <= 4 && fits(width))
        .max()
        .unwrap_or(1)
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
    /// Features per step and which biases are given (bit 0 the input's, bit 1 the recurrent), when
    /// the kernel projects the input itself.
    projects: Option<(usize, u32)>,
    _backend: Marker<R, I, BT>,
}

impl<R: CubeRuntime, I: IntElement, BT: BoolElement> Operation<FusionCubeRuntime<R>>
    for Forward<R, I, BT>
{
    fn execute(&self, handles: &mut Handles<R>) {
        let (input_irs, [packed_ir, residuals_ir]) = self.desc.as_fixed::<9, 2>();
        let [projection_ir, rest @ ..] = input_irs;
        // The input, when the kernel projects it, keeps its strides (the previous layer's output is
        // a view); a projection is made contiguous.
        let mut projection = handles.get_float_tensor::<Inner<R, I, BT>>(projection_ir);
        if self.projects.is_none() {
            projection = into_contiguous(projection);
        }
        let [
            weight_ih,
            bias_ih,
            bias_hh,
            weight_hh,
            bias_hn,
            peepholes,
            hidden,
            cell,
        ] = inputs::<R, I, BT, 8>(handles, rest);
        let (features, biased) = self.projects.unwrap_or((0, 0));
        let vector = match self.projects {
            Some(_) => input_vector(&projection, features),
            None => 1,
        };
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
                vector,
                projection.into_tensor_arg(),
                weight_ih.into_tensor_arg(),
                bias_ih.into_tensor_arg(),
                bias_hh.into_tensor_arg(),
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
                call.initial_state,
                features as u32,
                biased,
            );
        }
        handles.register_float_tensor::<Inner<R, I, BT>>(&packed_ir.id, packed);
        handles.register_float_tensor::<Inner<R, I, BT>>(&residuals_ir.id, residuals);
    }
}

/// The forward kernel on `[projection, weight_ih, bias_ih, bias_hh, weight_hh, bias_hn, peepholes,
/// initial hidden, initial cell]`; with `projects` (features per step; which biases are given, bit 0
/// and bit 1) the first is the input, which the kernel projects with `weight_ih` and the biases
/// itself ([`Call::projects`]), else the projection, and those three are unused. Returns the packed
/// output and the residuals (one unused element when not kept, or for the tanh RNN).
pub fn forward<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    call: Call,
    keep_residuals: bool,
    projects: Option<(usize, u32)>,
    inputs: [Primitive<R, I, BT>; 9],
) -> [Primitive<R, I, BT>; 2] {
    let width = call.residual_width();
    let residuals = if keep_residuals && width > 0 {
        Shape::new([call.batch, call.time, width])
    } else {
        Shape::new(UNUSED)
    };
    register::<R, I, BT, Forward<R, I, BT>, 9, 2>(
        "recurrent_layer_forward",
        inputs,
        [Shape::new(call.packed_shape()), residuals],
        |desc| Forward {
            desc,
            call,
            keep_residuals: keep_residuals && width > 0,
            projects,
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
        // Small layers run the kernel that keeps each unit's carry in registers.
        if call.weights == kernels::WEIGHTS_OWN {
            // SAFETY: as for the forward launch: the plan bounds every index, the gradients are
            // allocated here and the inputs have the call's shapes.
            unsafe {
                kernels::recurrence_backward_own::launch_unchecked::<R>(
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
                    call.initial_state,
                );
            }
        } else {
            // SAFETY: as above.
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
                    call.initial_state,
                    call.double_buffered,
                );
            }
        }
        handles.register_float_tensor::<Inner<R, I, BT>>(&gates_ir.id, grad_gates);
        handles.register_float_tensor::<Inner<R, I, BT>>(&hidden_n_ir.id, grad_hidden_n);
        handles.register_float_tensor::<Inner<R, I, BT>>(&initial_ir.id, grad_initial);
    }
}

/// The backward kernel on `[packed, residuals, grad of packed, weight_hh transposed ([G·H, H]; as it
/// is, [H, G·H], when the plan puts it in registers), peepholes, initial hidden, initial cell]`;
/// returns the gate gradients `[batch, time, G·H]`, the GRU's gradient of `W_hn h + b_hn`
/// `[batch, time, H]` (one unused element for the other cells), and the gradients of the initial
/// state `[batch, 2, H]`.
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

/// The parameter-gradient kernel as an operation.
#[derive(Debug)]
struct ParameterGradients<R, I, BT> {
    desc: CustomOpIr,
    call: Call,
    launch: ParameterLaunch,
    _backend: Marker<R, I, BT>,
}

impl<R: CubeRuntime, I: IntElement, BT: BoolElement> Operation<FusionCubeRuntime<R>>
    for ParameterGradients<R, I, BT>
{
    fn execute(&self, handles: &mut Handles<R>) {
        let (input_irs, [partials_ir]) = self.desc.as_fixed::<5, 1>();
        let [input_ir, rest @ ..] = input_irs;
        // The input keeps its strides: the kernel reads a view of the previous layer's output as is.
        let input = handles.get_float_tensor::<Inner<R, I, BT>>(input_ir);
        let [packed, initial_hidden, grad_gates, grad_hidden_n] =
            inputs::<R, I, BT, 4>(handles, rest);
        let (call, launch) = (self.call, self.launch);
        let features = input.meta.shape()[2];
        let vector = input_vector(&input, features);
        let partials = empty(&packed, partials_ir.shape.clone());
        let client = packed.client.clone();
        // `Call::parameter_launch` gives each cube whole sequences of the batch and each unit `span`
        // gate columns (columns past the last compute on it and write nothing); each unit writes its
        // own columns of its cube's partial sums, allocated here.
        // SAFETY: so every index is within the call's shapes (the input's through its own strides).
        unsafe {
            kernels::parameter_gradients::launch_unchecked::<R>(
                &client,
                CubeCount::Static(launch.chunks as u32, 1, 1),
                CubeDim::new_1d(launch.units as u32),
                vector,
                input.into_tensor_arg(),
                packed.into_tensor_arg(),
                initial_hidden.into_tensor_arg(),
                grad_gates.into_tensor_arg(),
                grad_hidden_n.into_tensor_arg(),
                partials.clone().into_tensor_arg(),
                call.time as u32,
                call.batch as u32,
                launch.chunk as u32,
                call.cell,
                call.hidden as u32,
                features as u32,
                launch.span as u32,
                call.initial_state,
            );
        }
        handles.register_float_tensor::<Inner<R, I, BT>>(&partials_ir.id, partials);
    }
}

/// The parameter-gradient kernel on `[input, packed, initial hidden, gate gradients, the GRU's
/// gradient of W_hn h + b_hn]`, launched as [`Call::parameter_launch`] says; returns the partial sums
/// `[chunks, I + H + 2, G·H]`: `W_ih`, `W_hh`, then the input and recurrent biases.
pub fn parameter_gradients<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    call: Call,
    launch: ParameterLaunch,
    inputs: [Primitive<R, I, BT>; 5],
) -> Primitive<R, I, BT> {
    let rows = kernels::parameter_rows(inputs[0].shape[2] as u32, call.hidden as u32);
    let [partials] = register::<R, I, BT, ParameterGradients<R, I, BT>, 5, 1>(
        "recurrent_layer_parameter_gradients",
        inputs,
        [Shape::new([launch.chunks, rows, call.gates()])],
        |desc| ParameterGradients {
            desc,
            call,
            launch,
            _backend: PhantomData,
        },
    );
    partials
}
