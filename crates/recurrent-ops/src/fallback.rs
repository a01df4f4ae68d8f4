//! The layer written step by step in Burn tensor operations: what every backend runs unless it has
//! native kernels, and the reference those kernels are tested against.

use burn::backend::Autodiff;
use burn::tensor::{Bool, Tensor, TensorData, backend::Backend};

use crate::{
    Cell, FusedLayer, FusedOutput, LayerGrads, LayerWeights, RecurrentState, Sequence, pack,
};

/// [`layer`] as one fused operation: its packed output (see [`FusedOutput::packed`]), no residuals.
pub fn forward<B: Backend>(layer: &FusedLayer<B>) -> FusedOutput<B> {
    let device = layer.weights.device();
    let (sequence, state) = run(
        &layer.weights,
        Sequence::Whole(layer.input.clone()),
        layer.state.clone(),
        layer.lengths.as_deref(),
    );
    FusedOutput {
        packed: pack(sequence.into_whole(&device), state),
        residuals: None,
    }
}

/// Gradients of [`forward`]'s inputs from `grad`, the gradient of its packed output: the layer
/// recomputed under `Autodiff<B>` and differentiated. The input's gradient is always computed.
pub fn backward<B: Backend>(layer: &FusedLayer<B>, grad: Tensor<B, 3>) -> LayerGrads<B> {
    type Ad<B> = Autodiff<B>;
    fn tracked<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Tensor<Ad<B>, D> {
        Tensor::from_inner(t.clone()).require_grad()
    }
    let w = &layer.weights;
    let weights = LayerWeights::<Ad<B>> {
        cell: w.cell,
        weight_ih: tracked(&w.weight_ih),
        weight_hh: tracked(&w.weight_hh),
        bias_ih: w.bias_ih.as_ref().map(tracked),
        bias_hh: w.bias_hh.as_ref().map(tracked),
        peepholes: w.peepholes.as_ref().map(|p| p.each_ref().map(tracked)),
    };
    let input = tracked(&layer.input);
    let state = layer.state.as_ref().map(|s| RecurrentState {
        hidden: tracked(&s.hidden),
        cell: s.cell.as_ref().map(tracked),
    });
    let device = weights.device();
    let (sequence, final_state) = run(
        &weights,
        Sequence::Whole(input.clone()),
        state.clone(),
        layer.lengths.as_deref(),
    );
    let packed = pack(sequence.into_whole(&device), final_state);
    let gradients = (packed * Tensor::from_inner(grad)).sum().backward();
    let of = |t: &Tensor<Ad<B>, 2>| {
        t.grad(&gradients)
            .unwrap_or_else(|| t.clone().inner().zeros_like())
    };
    let of1 = |t: &Tensor<Ad<B>, 1>| {
        t.grad(&gradients)
            .unwrap_or_else(|| t.clone().inner().zeros_like())
    };
    LayerGrads {
        input: Some(
            input
                .grad(&gradients)
                .unwrap_or_else(|| input.clone().inner().zeros_like()),
        ),
        weight_ih: of(&weights.weight_ih),
        weight_hh: of(&weights.weight_hh),
        bias_ih: weights.bias_ih.as_ref().map(of1),
        bias_hh: weights.bias_hh.as_ref().map(of1),
        peepholes: weights.peepholes.as_ref().map(|p| p.each_ref().map(of1)),
        hidden: state.as_ref().map(|s| of(&s.hidden)),
        cell: state.as_ref().and_then(|s| s.cell.as_ref().map(of)),
    }
}

/// What every step of one sequence reads: the recurrent weights, the GRU's recurrent bias as a row,
/// and the peephole weights as rows, taken out of the layer's weights once per sequence.
struct StepWeights<B: Backend> {
    hh: Tensor<B, 2>,
    gru_bias_hh: Option<Tensor<B, 2>>,
    peepholes: Option<[Tensor<B, 2>; 3]>,
}

/// Runs the layer over `input` from `state` (zeros when `None`), one time step after the other;
/// returns the hidden state after every step, as [`Sequence::Steps`], and the final state.
///
/// Each step projects its input with one `[batch, in] @ [in, G·H]` product, adds the recurrent
/// `[batch, H] @ [H, G·H]` product and applies the cell's gates.
pub fn layer<B: Backend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
) -> (Sequence<B>, RecurrentState<B>) {
    run(weights, input, state, None)
}

/// [`layer`] over a padded batch whose sequence `b` is `lengths[b]` steps long (each in
/// `1..=time`): every step runs for every row, and a row past its length keeps its state and outputs
/// zeros. The padding is replaced by zeros before it is read, so NaN or huge values there reach
/// neither an output nor a gradient. The reference for [`crate::lengths::layer`].
pub fn masked_layer<B: Backend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: &[usize],
) -> (Sequence<B>, RecurrentState<B>) {
    let [batch, time, _] = input.dims();
    crate::layer::check_lengths(lengths, batch, time);
    run(weights, input, state, Some(lengths))
}

/// `[rows, width]` mask, true where row `r` is still running at step `t`.
fn running<B: Backend>(
    lengths: &[usize],
    t: usize,
    width: usize,
    device: &B::Device,
) -> Tensor<B, 2, Bool> {
    let values: Vec<bool> = lengths
        .iter()
        .flat_map(|&l| std::iter::repeat_n(t < l, width))
        .collect();
    Tensor::from_data(TensorData::new(values, [lengths.len(), width]), device)
}

fn run<B: Backend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
) -> (Sequence<B>, RecurrentState<B>) {
    let [batch, _, features] = input.dims();
    let hidden_size = weights.hidden_size();
    let device = weights.device();
    let step_weights = StepWeights {
        hh: weights.weight_hh.clone(),
        gru_bias_hh: (weights.cell == Cell::Gru)
            .then(|| weights.bias_hh.clone().map(|b| b.unsqueeze::<2>()))
            .flatten(),
        peepholes: weights
            .peepholes
            .clone()
            .map(|p| p.map(|w| w.unsqueeze::<2>())),
    };
    // The GRU's recurrent bias sits inside the reset gate's product, so it cannot be folded in.
    let folded_bias = match (weights.cell, &weights.bias_ih, &weights.bias_hh) {
        (Cell::Gru, Some(b_ih), _) => Some(b_ih.clone()),
        (_, Some(b_ih), Some(b_hh)) => Some(b_ih.clone() + b_hh.clone()),
        (_, Some(b), None) | (_, None, Some(b)) => Some(b.clone()),
        (_, None, None) => None,
    }
    .map(|b| b.unsqueeze::<2>());

    let mut state = state;
    let steps = input.into_steps();
    let mut outputs = Vec::with_capacity(steps.len());
    for (t, mut x) in steps.into_iter().enumerate() {
        let active = lengths.map(|l| {
            (
                running::<B>(l, t, features, &device),
                running::<B>(l, t, hidden_size, &device),
            )
        });
        if let Some((active_input, _)) = &active {
            x = x.mask_fill(active_input.clone().bool_not(), 0.0);
        }
        let mut projected = x.matmul(weights.weight_ih.clone());
        if let Some(bias) = &folded_bias {
            projected = projected + bias.clone();
        }
        let previous = state.clone();
        let mut next = step(
            weights.cell,
            hidden_size,
            projected,
            state.take(),
            &step_weights,
        );
        if let Some((_, active)) = active {
            // Rows past their length keep the state they had and output zeros.
            let zeros = || Tensor::zeros([batch, hidden_size], &device);
            let (kept_hidden, kept_cell) = match previous {
                Some(p) => (p.hidden, p.cell),
                None => (zeros(), None),
            };
            next = RecurrentState {
                hidden: kept_hidden.mask_where(active.clone(), next.hidden),
                cell: next.cell.map(|c| {
                    kept_cell
                        .unwrap_or_else(zeros)
                        .mask_where(active.clone(), c)
                }),
            };
            outputs.push(next.hidden.clone().mask_fill(active.bool_not(), 0.0));
        } else {
            outputs.push(next.hidden.clone());
        }
        state = Some(next);
    }
    let state = state.unwrap_or_else(|| {
        let zeros = Tensor::zeros([batch, hidden_size], &device);
        RecurrentState {
            hidden: zeros.clone(),
            cell: weights.cell.has_cell_state().then_some(zeros),
        }
    });
    let sequence = Sequence::Steps {
        steps: outputs,
        batch,
        features: hidden_size,
    };
    (sequence, state)
}

/// One time step from the projected input `x` `[batch, G·H]` (biases folded in as [`layer`] does).
fn step<B: Backend>(
    cell: Cell,
    h: usize,
    x: Tensor<B, 2>,
    state: Option<RecurrentState<B>>,
    weights: &StepWeights<B>,
) -> RecurrentState<B> {
    let recurrent = |s: &RecurrentState<B>| s.hidden.clone().matmul(weights.hh.clone());
    match cell {
        Cell::Lstm => {
            let gates = match &state {
                Some(s) => x + recurrent(s),
                None => x,
            };
            let act = sigmoid(gates.clone());
            let input_gate = act.clone().narrow(1, 0, h);
            let forget_gate = act.clone().narrow(1, h, h);
            let output_gate = act.narrow(1, 3 * h, h);
            let candidate = gates.narrow(1, 2 * h, h).tanh();
            let cell = match state.and_then(|s| s.cell) {
                Some(previous) => forget_gate * previous + input_gate * candidate,
                None => input_gate * candidate,
            };
            let hidden = output_gate * cell.clone().tanh();
            RecurrentState {
                hidden,
                cell: Some(cell),
            }
        }
        Cell::PeepholeLstm => {
            let gates = match &state {
                Some(s) => x + recurrent(s),
                None => x,
            };
            let [w_ci, w_cf, w_co] = weights
                .peepholes
                .clone()
                .expect("a peephole layer has its peephole weights");
            let mut input_pre = gates.clone().narrow(1, 0, h);
            let mut forget_pre = gates.clone().narrow(1, h, h);
            let candidate = gates.clone().narrow(1, 2 * h, h).tanh();
            let output_pre = gates.narrow(1, 3 * h, h);
            let previous = state.and_then(|s| s.cell);
            if let Some(previous) = &previous {
                input_pre = input_pre + previous.clone() * w_ci;
                forget_pre = forget_pre + previous.clone() * w_cf;
            }
            let input_gate = sigmoid(input_pre);
            let cell = match previous {
                Some(previous) => sigmoid(forget_pre) * previous + input_gate * candidate,
                None => input_gate * candidate,
            };
            let output_gate = sigmoid(output_pre + cell.clone() * w_co);
            let hidden = output_gate * cell.clone().tanh();
            RecurrentState {
                hidden,
                cell: Some(cell),
            }
        }
        Cell::Gru => {
            let hidden_part = match (&state, weights.gru_bias_hh.clone()) {
                (Some(s), Some(b)) => Some(recurrent(s) + b),
                (Some(s), None) => Some(recurrent(s)),
                (None, Some(b)) => Some(b),
                (None, None) => None,
            };
            let x_rz = x.clone().narrow(1, 0, 2 * h);
            let x_n = x.narrow(1, 2 * h, h);
            let (rz, new_pre) = match hidden_part {
                Some(hp) => {
                    let rz = sigmoid(x_rz + hp.clone().narrow(1, 0, 2 * h));
                    let reset = rz.clone().narrow(1, 0, h);
                    (rz, x_n + reset * hp.narrow(1, 2 * h, h))
                }
                None => (sigmoid(x_rz), x_n),
            };
            let update = rz.narrow(1, h, h);
            let new = new_pre.tanh();
            // PyTorch's h' = (1 - z) ⊙ n + z ⊙ h, term for term.
            let kept_new = update.clone().neg().add_scalar(1.0) * new;
            let hidden = match state {
                Some(s) => kept_new + update * s.hidden,
                None => kept_new,
            };
            RecurrentState { hidden, cell: None }
        }
        Cell::Rnn => {
            let pre = match &state {
                Some(s) => x + recurrent(s),
                None => x,
            };
            RecurrentState {
                hidden: pre.tanh(),
                cell: None,
            }
        }
    }
}

/// The logistic function as `1 / (1 + exp(-x))`: one `exp` per element where Burn's default
/// (`exp(-log(1 + exp(-x)))`) takes two and a `log`, and as close to PyTorch. The division is written
/// out because burn-ndarray's `recip` is an approximate reciprocal.
fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let denominator = x.neg().exp().add_scalar(1.0);
    Tensor::ones_like(&denominator).div(denominator)
}
