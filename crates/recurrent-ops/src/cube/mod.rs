//! The GPU backends (wgpu, CUDA: any fused CubeCL backend of f32) run each layer's recurrence as one
//! CubeCL kernel launch, forward and backward.
//!
//! Forward: one launch runs every step ([`kernels::recurrence_forward`]); a small layer's kernel
//! projects the input itself, a wider layer's projection of all steps is one matrix product (Burn's)
//! before it. Backward: one launch walks the steps in reverse and writes the gate gradients of every
//! step ([`kernels::recurrence_backward`]); the weight and bias gradients of a small layer are then
//! one more launch ([`kernels::parameter_gradients`]) and one sum, a wide layer's matrix products and
//! sums over all steps, and the input gradient a matrix product. Each call is laid out on the device
//! by [`plan::Call::plan`] from the device's own limits; a layer whose step state does not fit the
//! device's workgroup memory runs the step-by-step [`fallback`], and says so once.

mod kernels;
mod ops;
mod plan;

use std::sync::Once;

use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_cubecl::{BoolElement, CubeRuntime, IntElement};

use crate::backend::{fused_applies, fused_inference};
use crate::join;
use crate::{
    Cell, FusedLayer, FusedOutput, LayerGrads, LayerWeights, RecurrentBackend, RecurrentState,
    Sequence, fallback,
};
use ops::{Cube, Primitive};
use plan::{Call, Limits, Unfit};

impl<R: CubeRuntime, I: IntElement, BT: BoolElement> RecurrentBackend for Cube<R, I, BT> {
    fn recurrent_layer(
        weights: &LayerWeights<Self>,
        input: Sequence<Self>,
        state: Option<RecurrentState<Self>>,
    ) -> (Sequence<Self>, RecurrentState<Self>) {
        fused_inference(weights, input, state, None)
    }

    fn fused_runs(weights: &LayerWeights<Self>, input: &Sequence<Self>) -> bool {
        fused_applies::<Self, Self>(weights, input)
    }

    fn fused_layer_available(_cell: Cell, dtype: DType) -> bool {
        dtype == DType::F32
    }

    fn fused_layer_forward(layer: &FusedLayer<Self>, keep_residuals: bool) -> FusedOutput<Self> {
        fused_forward::<R, I, BT>(layer, keep_residuals)
    }

    fn fused_layer_backward(
        layer: &FusedLayer<Self>,
        output: &FusedOutput<Self>,
        grad: Tensor<Self, 3>,
        input_grad: bool,
    ) -> LayerGrads<Self> {
        match kernel_call::<R, I, BT>(layer) {
            Some(call) => fused_backward::<R, I, BT>(call, layer, output, grad, input_grad),
            None => fallback::backward(layer, grad),
        }
    }
}

fn cell_code(cell: Cell) -> u32 {
    match cell {
        Cell::Lstm => kernels::LSTM,
        Cell::PeepholeLstm => kernels::PEEPHOLE_LSTM,
        Cell::Gru => kernels::GRU,
        Cell::Rnn => kernels::RNN,
    }
}

/// The kernels' layout of `layer` on its device, or `None` (said once per process) when it runs the
/// fallback. The kernels take no lengths: a layer given some runs the fallback, which honours them
/// (`lengths::layer` never gives these backends lengths; it runs segments).
fn kernel_call<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
) -> Option<Call> {
    static UNFIT: Once = Once::new();
    if layer.lengths.is_some() {
        return None;
    }
    let cell = layer.weights.cell;
    let hidden = layer.weights.hidden_size();
    let [batch, time, _] = layer.input.dims();
    check_shapes(layer, batch, hidden);
    let limits = Limits::of::<R>(&layer.weights.device());
    let why = match Call::plan(cell_code(cell), [batch, time, hidden], &limits) {
        Ok(call) => return Some(call.starting_from_state(layer.state.is_some())),
        Err(Unfit::Empty) => return None,
        Err(Unfit::Memory { needed, offered }) => format!(
            "a {cell} layer of hidden size {hidden} needs {needed} bytes of workgroup memory per \
             sequence and the device offers {offered}"
        ),
        Err(Unfit::Batch) => format!(
            "a batch of {batch} sequences needs more workgroups than the device launches at once \
             ({})",
            limits.cubes
        ),
    };
    UNFIT.call_once(|| eprintln!("recurrent-ops: {why}; such layers run step by step"));
    None
}

/// The shapes the kernels index by: their launches are unchecked, so a layer whose recurrent weights,
/// peepholes or initial state disagree with its hidden size and batch stops here, as a mismatched
/// shape stops any Burn operation.
fn check_shapes<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
    batch: usize,
    hidden: usize,
) {
    let w = &layer.weights;
    let cell = w.cell;
    assert_eq!(
        w.weight_hh.dims(),
        [hidden, cell.gates() * hidden],
        "a {cell} layer's recurrent weights are [H, G·H]"
    );
    for peephole in w.peepholes.iter().flatten() {
        assert_eq!(peephole.dims(), [hidden], "a peephole vector is [H]");
    }
    if let Some(state) = &layer.state {
        assert_eq!(
            state.hidden.dims(),
            [batch, hidden],
            "the initial hidden state is [batch, H]"
        );
        if let Some(c) = &state.cell {
            assert_eq!(
                c.dims(),
                [batch, hidden],
                "the initial cell state is [batch, H]"
            );
        }
    }
}

fn primitive<R: CubeRuntime, I: IntElement, BT: BoolElement, const D: usize>(
    tensor: Tensor<Cube<R, I, BT>, D>,
) -> Primitive<R, I, BT> {
    tensor.into_primitive().tensor()
}

fn tensor<R: CubeRuntime, I: IntElement, BT: BoolElement, const D: usize>(
    primitive: Primitive<R, I, BT>,
) -> Tensor<Cube<R, I, BT>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// A one-element tensor for an input a kernel does not read (allocated, never filled).
fn unused<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
) -> Primitive<R, I, BT> {
    primitive(Tensor::<Cube<R, I, BT>, 1>::empty(
        [1],
        &layer.weights.device(),
    ))
}

/// `[w_ci, w_cf, w_co]` as one `[3H]` tensor, or a placeholder.
fn peepholes<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
) -> Primitive<R, I, BT> {
    match &layer.weights.peepholes {
        Some(p) => primitive(join::cat(p.to_vec(), 0)),
        None => unused(layer),
    }
}

/// The initial hidden state `[batch, H]`, and the cell state for the LSTMs.
type InitialState<R, I, BT> = (Tensor<Cube<R, I, BT>, 2>, Option<Tensor<Cube<R, I, BT>, 2>>);

/// The initial hidden state, and the cell state for the LSTMs, zeros where none was given.
fn initial_state<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
    call: Call,
) -> InitialState<R, I, BT> {
    let device = layer.weights.device();
    let zeros = || Tensor::<Cube<R, I, BT>, 2>::zeros([call.batch, call.hidden], &device);
    let state = layer.state.as_ref();
    let hidden = state.map_or_else(zeros, |s| s.hidden.clone());
    let cell = layer
        .weights
        .cell
        .has_cell_state()
        .then(|| state.and_then(|s| s.cell.clone()).unwrap_or_else(zeros));
    (hidden, cell)
}

/// The initial state as the kernels' last two inputs: the given state, else placeholders (the
/// kernels start from zeros, [`Call::initial_state`]), and one for a cell state the cell lacks.
fn state_inputs<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
) -> [Primitive<R, I, BT>; 2] {
    let state = layer.state.as_ref();
    [
        state.map_or_else(|| unused(layer), |s| primitive(s.hidden.clone())),
        state
            .and_then(|s| s.cell.clone())
            .map_or_else(|| unused(layer), primitive),
    ]
}

fn fused_forward<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    layer: &FusedLayer<Cube<R, I, BT>>,
    keep_residuals: bool,
) -> FusedOutput<Cube<R, I, BT>> {
    let Some(call) = kernel_call::<R, I, BT>(layer) else {
        return fallback::forward(layer);
    };
    let w = &layer.weights;
    let device = w.device();
    let [batch, time, input] = layer.input.dims();
    let h = call.hidden;
    let gh = w.cell.gates() * h;

    // Every bias that adds to the projection is folded into it; the GRU's recurrent `n` bias sits
    // inside the reset gate's product, so the kernel adds it there. A small layer's kernel projects
    // the input itself, and sums those biases too; a wider layer's projection is one product.
    let gru = w.cell == Cell::Gru;
    let projects = call.projects(input);
    let given = |bias: &Option<Tensor<Cube<R, I, BT>, 1>>| {
        bias.clone().map_or_else(|| unused(layer), primitive)
    };
    let [projection, weight_ih, bias_ih, bias_hh] = if projects {
        [
            primitive(layer.input.clone()),
            primitive(w.weight_ih.clone()),
            given(&w.bias_ih),
            given(&w.bias_hh),
        ]
    } else {
        let recurrent_bias = w.bias_hh.clone().map(|b| {
            if gru {
                join::cat(vec![b.narrow(0, 0, 2 * h), Tensor::zeros([h], &device)], 0)
            } else {
                b
            }
        });
        let bias = match (w.bias_ih.clone(), recurrent_bias) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        let mut projection = layer
            .input
            .clone()
            .reshape([batch * time, input])
            .matmul(w.weight_ih.clone());
        if let Some(bias) = bias {
            projection = projection + bias.unsqueeze::<2>();
        }
        [
            primitive(projection.reshape([batch, time, gh])),
            unused(layer),
            unused(layer),
            unused(layer),
        ]
    };
    let biased = u32::from(w.bias_ih.is_some()) | (u32::from(w.bias_hh.is_some()) << 1);
    let bias_hn = match (&w.bias_hh, gru) {
        (Some(b), true) => primitive(b.clone().narrow(0, 2 * h, h)),
        (None, true) => primitive(Tensor::<Cube<R, I, BT>, 1>::zeros([h], &device)),
        (_, false) => unused(layer),
    };
    let [hidden, cell] = state_inputs(layer);
    let [packed, residuals] = ops::forward::<R, I, BT>(
        call,
        keep_residuals,
        projects.then_some((input, biased)),
        [
            projection,
            weight_ih,
            bias_ih,
            bias_hh,
            primitive(w.weight_hh.clone()),
            bias_hn,
            peepholes(layer),
            hidden,
            cell,
        ],
    );
    FusedOutput {
        packed: tensor(packed),
        residuals: (keep_residuals && call.residual_width() > 0).then(|| tensor(residuals)),
    }
}

fn fused_backward<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    call: Call,
    layer: &FusedLayer<Cube<R, I, BT>>,
    output: &FusedOutput<Cube<R, I, BT>>,
    grad: Tensor<Cube<R, I, BT>, 3>,
    input_grad: bool,
) -> LayerGrads<Cube<R, I, BT>> {
    let w = &layer.weights;
    let [batch, time, input] = layer.input.dims();
    let (h, rows) = (call.hidden, batch * time);
    let gh = w.cell.gates() * h;
    let residuals = output.residuals.clone();
    let [hidden, cell] = state_inputs(layer);
    let [grad_gates, grad_hidden_n, grad_initial] = ops::backward::<R, I, BT>(
        call,
        [
            primitive(output.packed.clone()),
            residuals.clone().map_or_else(|| unused(layer), primitive),
            primitive(grad),
            // Transposed, so that the units of a cube (over hidden units) read neighbouring floats at
            // every step; as it is when each unit reads its own row once into registers.
            primitive(if call.weights == kernels::WEIGHTS_OWN {
                w.weight_hh.clone()
            } else {
                w.weight_hh.clone().transpose()
            }),
            peepholes(layer),
            hidden.clone(),
            cell,
        ],
    );
    let grad_gates: Tensor<Cube<R, I, BT>, 3> = tensor(grad_gates);
    let grad_initial: Tensor<Cube<R, I, BT>, 3> = tensor(grad_initial);
    let peepholes = w.peepholes.as_ref().map(|_| {
        let residuals = residuals
            .clone()
            .expect("the peephole LSTM keeps its residuals");
        let c = residuals.narrow(2, 4 * h, h);
        let (_, initial_cell) = initial_state(layer, call);
        let initial_cell = initial_cell.expect("an LSTM layer has a cell state");
        let c_previous = shifted(initial_cell, c.clone());
        let sum = |t: Tensor<Cube<R, I, BT>, 3>| t.sum_dim(0).sum_dim(1).reshape([h]);
        [
            sum(grad_gates.clone().narrow(2, 0, h) * c_previous.clone()),
            sum(grad_gates.clone().narrow(2, h, h) * c_previous),
            sum(grad_gates.clone().narrow(2, 3 * h, h) * c),
        ]
    });
    let state_grads = |cell: bool| {
        layer
            .state
            .as_ref()
            .filter(|s| !cell || s.cell.is_some())
            .map(|_| {
                grad_initial
                    .clone()
                    .narrow(1, usize::from(cell), 1)
                    .reshape([batch, h])
            })
    };
    let (hidden_grad, cell_grad) = (state_grads(false), state_grads(true));

    let limits = Limits::of::<R>(&w.device());
    let gates = grad_gates.clone().reshape([rows, gh]);
    let input_grads = || {
        input_grad.then(|| {
            gates
                .clone()
                .matmul(w.weight_ih.clone().transpose())
                .reshape([batch, time, input])
        })
    };
    if let Some(launch) = call.parameter_launch(input, &limits) {
        // A small layer's parameter gradients in one launch, then one sum of its cubes' partials.
        let partials: Tensor<Cube<R, I, BT>, 3> = tensor(ops::parameter_gradients::<R, I, BT>(
            call,
            launch,
            [
                primitive(layer.input.clone()),
                primitive(output.packed.clone()),
                hidden,
                primitive(grad_gates),
                grad_hidden_n,
            ],
        ));
        let rows = kernels::parameter_rows(input as u32, h as u32);
        let sums = partials.sum_dim(0).reshape([rows, gh]);
        let bias = |k: usize| sums.clone().narrow(0, input + h + k, 1).reshape([gh]);
        return LayerGrads {
            input: input_grads(),
            weight_ih: sums.clone().narrow(0, 0, input),
            weight_hh: sums.clone().narrow(0, input, h),
            bias_ih: w.bias_ih.as_ref().map(|_| bias(0)),
            bias_hh: w.bias_hh.as_ref().map(|_| bias(1)),
            peepholes,
            hidden: hidden_grad,
            cell: cell_grad,
        };
    }

    // The gate gradients as the recurrent product sees them: for the GRU's `n` gate, of `W_hn h + b_hn`.
    let recurrent = if w.cell == Cell::Gru {
        let hidden_n: Tensor<Cube<R, I, BT>, 3> = tensor(grad_hidden_n);
        join::cat(
            vec![
                gates.clone().narrow(1, 0, 2 * h),
                hidden_n.reshape([rows, h]),
            ],
            1,
        )
    } else {
        gates.clone()
    };
    let (initial_hidden, _) = initial_state(layer, call);
    let previous = shifted(initial_hidden, output.packed.clone().narrow(1, 0, time));
    let x = layer.input.clone().reshape([rows, input]);
    LayerGrads {
        input: input_grads(),
        weight_ih: x.transpose().matmul(gates.clone()),
        weight_hh: previous
            .reshape([rows, h])
            .transpose()
            .matmul(recurrent.clone()),
        bias_ih: w
            .bias_ih
            .as_ref()
            .map(|_| gates.clone().sum_dim(0).reshape([gh])),
        bias_hh: w
            .bias_hh
            .as_ref()
            .map(|_| recurrent.sum_dim(0).reshape([gh])),
        peepholes,
        hidden: hidden_grad,
        cell: cell_grad,
    }
}

/// `[batch, time, H]`: the value each step started from, `initial` `[batch, H]` then `steps`
/// shifted by one.
fn shifted<R: CubeRuntime, I: IntElement, BT: BoolElement>(
    initial: Tensor<Cube<R, I, BT>, 2>,
    steps: Tensor<Cube<R, I, BT>, 3>,
) -> Tensor<Cube<R, I, BT>, 3> {
    let time = steps.dims()[1];
    let first = initial.unsqueeze_dim(1);
    if time <= 1 {
        return first;
    }
    join::cat(vec![first, steps.narrow(1, 0, time - 1)], 1)
}
