use burn::module::{Initializer, Module, Param};
use burn::tensor::{Tensor, backend::Backend};

use crate::Cell;

/// State of one recurrent layer between time steps, each tensor `[batch, hidden]`.
#[derive(Debug, Clone)]
pub struct RecurrentState<B: Backend> {
    /// Hidden state `h`.
    pub hidden: Tensor<B, 2>,
    /// Cell state `c` of the LSTM cells; `None` for the GRU and the tanh RNN.
    pub cell: Option<Tensor<B, 2>>,
}

/// One recurrent layer of any [`Cell`], laid out like the matching PyTorch layer.
///
/// Weights are stored transposed with respect to PyTorch (`[in, G·H]` instead of `[G·H, in]`, G the
/// cell's gate count) so that a step is one `h @ W` matmul; gate columns keep PyTorch's order. The
/// input projection of the whole sequence is computed once, so each time step costs a single
/// `[batch, H] @ [H, G·H]` matmul plus the cell's element-wise work.
#[derive(Module, Debug)]
pub struct RecurrentLayer<B: Backend> {
    /// Input weights `[input_size, G·H]`.
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Recurrent weights `[H, G·H]`.
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input bias `[G·H]` (PyTorch's `bias_ih`).
    pub bias_ih: Option<Param<Tensor<B, 1>>>,
    /// Recurrent bias `[G·H]` (PyTorch's `bias_hh`); kept apart from `bias_ih` so that SGD updates
    /// match, and because the GRU applies it inside the reset gate.
    pub bias_hh: Option<Param<Tensor<B, 1>>>,
    /// Peephole weights from the previous cell state to the input gate, `[H]` (peephole LSTM only).
    pub weight_ci: Option<Param<Tensor<B, 1>>>,
    /// Peephole weights from the previous cell state to the forget gate, `[H]` (peephole LSTM only).
    pub weight_cf: Option<Param<Tensor<B, 1>>>,
    /// Peephole weights from the new cell state to the output gate, `[H]` (peephole LSTM only).
    pub weight_co: Option<Param<Tensor<B, 1>>>,
    cell: Cell,
    hidden_size: usize,
}

/// What every step of one sequence reads: the recurrent weights, the GRU's recurrent bias as a row,
/// and the peephole weights as rows.
struct StepWeights<B: Backend> {
    hh: Tensor<B, 2>,
    gru_bias_hh: Option<Tensor<B, 2>>,
    peepholes: Option<[Tensor<B, 2>; 3]>,
}

/// The parameters of one layer, in PyTorch layout transposed (see [`RecurrentLayer`]).
pub(crate) struct LayerParams<B: Backend> {
    pub weight_ih: Param<Tensor<B, 2>>,
    pub weight_hh: Param<Tensor<B, 2>>,
    pub bias_ih: Option<Param<Tensor<B, 1>>>,
    pub bias_hh: Option<Param<Tensor<B, 1>>>,
    pub peepholes: Option<[Param<Tensor<B, 1>>; 3]>,
}

impl<B: Backend> RecurrentLayer<B> {
    /// A layer initialized like PyTorch: every weight and bias drawn from U(-1/√H, 1/√H). The
    /// peephole weights, which PyTorch lacks, are drawn from the same distribution.
    pub fn new(
        cell: Cell,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let gates = cell.gates() * hidden_size;
        let bias_param = || bias.then(|| init.init([gates], device));
        let peephole = || (cell == Cell::PeepholeLstm).then(|| init.init([hidden_size], device));
        Self {
            weight_ih: init.init([input_size, gates], device),
            weight_hh: init.init([hidden_size, gates], device),
            bias_ih: bias_param(),
            bias_hh: bias_param(),
            weight_ci: peephole(),
            weight_cf: peephole(),
            weight_co: peephole(),
            cell,
            hidden_size,
        }
    }

    /// A layer from existing parameters; importers check the shapes first.
    pub(crate) fn from_params(cell: Cell, params: LayerParams<B>) -> Self {
        let hidden_size = params.weight_hh.dims()[0];
        let [weight_ci, weight_cf, weight_co] = match params.peepholes {
            Some([ci, cf, co]) => [Some(ci), Some(cf), Some(co)],
            None => [None, None, None],
        };
        Self {
            weight_ih: params.weight_ih,
            weight_hh: params.weight_hh,
            bias_ih: params.bias_ih,
            bias_hh: params.bias_hh,
            weight_ci,
            weight_cf,
            weight_co,
            cell,
            hidden_size,
        }
    }

    /// The cell this layer runs.
    pub fn cell(&self) -> Cell {
        self.cell
    }

    /// Hidden size H of this layer.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Features per time step this layer reads.
    pub fn input_size(&self) -> usize {
        self.weight_ih.dims()[0]
    }

    /// Runs the layer over `input` `[batch, time, in]` from `state` (zeros when `None`).
    ///
    /// Returns the output sequence `[batch, time, H]` when `keep_sequence` is true (a following layer
    /// needs it; the last layer of a classifier does not), and the final state.
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<RecurrentState<B>>,
        keep_sequence: bool,
    ) -> (Option<Tensor<B, 3>>, RecurrentState<B>) {
        let [batch, _, _] = input.dims();
        let (outputs, state) = self.forward_steps(split_steps(input), state);
        let sequence = keep_sequence
            .then(|| stack_steps(outputs, batch, self.hidden_size, &state.hidden.device()));
        (sequence, state)
    }

    /// Runs the layer over a sequence given step by step (`[batch, in]` each), from `state` (zeros
    /// when `None`); returns the hidden state after every step and the final state.
    ///
    /// Steps are separate tensors, not slices of one `[batch, time, ·]` tensor, because the backward
    /// pass of a slice fills a gradient the size of the whole sequence: slicing every step of a
    /// tracked sequence costs time quadratic in its length (784 steps for pixel-level MNIST).
    pub fn forward_steps(
        &self,
        steps: Vec<Tensor<B, 2>>,
        state: Option<RecurrentState<B>>,
    ) -> (Vec<Tensor<B, 2>>, RecurrentState<B>) {
        let weight_ih = self.weight_ih.val();
        let weights = self.step_weights();
        // The GRU's recurrent bias sits inside the reset gate's product, so it cannot be folded in.
        let folded_bias = match (self.cell, &self.bias_ih, &self.bias_hh) {
            (Cell::Gru, Some(b_ih), _) => Some(b_ih.val()),
            (_, Some(b_ih), Some(b_hh)) => Some(b_ih.val() + b_hh.val()),
            (_, Some(b), None) | (_, None, Some(b)) => Some(b.val()),
            (_, None, None) => None,
        }
        .map(|b| b.unsqueeze::<2>());
        let batch = steps.first().map_or(0, |x| x.dims()[0]);
        let device = weights.hh.device();

        let mut state = state;
        let mut outputs = Vec::with_capacity(steps.len());
        for x in steps {
            let mut projected = x.matmul(weight_ih.clone());
            if let Some(bias) = &folded_bias {
                projected = projected + bias.clone();
            }
            let next = self.step(projected, state.take(), &weights);
            outputs.push(next.hidden.clone());
            state = Some(next);
        }
        let state = state.unwrap_or_else(|| {
            let zeros = Tensor::zeros([batch, self.hidden_size], &device);
            RecurrentState {
                hidden: zeros.clone(),
                cell: self.cell.has_cell_state().then_some(zeros),
            }
        });
        (outputs, state)
    }

    /// The tensors every step reads, taken out of their parameters once per sequence rather than
    /// once per step.
    fn step_weights(&self) -> StepWeights<B> {
        let row = |p: &Param<Tensor<B, 1>>| p.val().unsqueeze::<2>();
        let peepholes = match (&self.weight_ci, &self.weight_cf, &self.weight_co) {
            (Some(ci), Some(cf), Some(co)) => Some([row(ci), row(cf), row(co)]),
            _ => None,
        };
        StepWeights {
            hh: self.weight_hh.val(),
            gru_bias_hh: (self.cell == Cell::Gru)
                .then(|| self.bias_hh.as_ref().map(row))
                .flatten(),
            peepholes,
        }
    }

    /// One time step from the projected input `x` `[batch, G·H]` (biases folded in as `forward_steps` does).
    fn step(
        &self,
        x: Tensor<B, 2>,
        state: Option<RecurrentState<B>>,
        weights: &StepWeights<B>,
    ) -> RecurrentState<B> {
        let h = self.hidden_size;
        let recurrent = |s: &RecurrentState<B>| s.hidden.clone().matmul(weights.hh.clone());
        match self.cell {
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
}

/// The steps of `input` `[batch, time, features]`, each `[batch, features]`.
pub(crate) fn split_steps<B: Backend>(input: Tensor<B, 3>) -> Vec<Tensor<B, 2>> {
    let [batch, time, features] = input.dims();
    (0..time)
        .map(|t| input.clone().narrow(1, t, 1).reshape([batch, features]))
        .collect()
}

/// `[batch, time, hidden]` from per-step `[batch, hidden]` tensors (time may be 0).
pub(crate) fn stack_steps<B: Backend>(
    steps: Vec<Tensor<B, 2>>,
    batch: usize,
    hidden: usize,
    device: &B::Device,
) -> Tensor<B, 3> {
    if steps.is_empty() {
        Tensor::zeros([batch, 0, hidden], device)
    } else {
        Tensor::stack(steps, 1)
    }
}

/// The logistic function as `1 / (1 + exp(-x))`: one `exp` per element where Burn's default
/// (`exp(-log(1 + exp(-x)))`) takes two and a `log`; 8-24 % faster training and inference on ndarray
/// (docs/benchmarks.md), and as close to PyTorch. The division is written out because burn-ndarray's
/// `recip` is an approximate reciprocal.
fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let denominator = x.neg().exp().add_scalar(1.0);
    Tensor::ones_like(&denominator).div(denominator)
}
