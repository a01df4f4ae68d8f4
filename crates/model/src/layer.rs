use burn::module::{Initializer, Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use recurrent_ops::join;
use recurrent_ops::{LayerWeights, RecurrentState, Sequence};

use crate::{Cell, RecurrentInit};

/// One recurrent layer of any [`Cell`], laid out like the matching PyTorch layer.
///
/// Weights are stored transposed with respect to PyTorch (`[in, G·H]` instead of `[G·H, in]`, G the
/// cell's gate count) so that a step is one `h @ W` matmul; gate columns keep PyTorch's order. The
/// layer runs as one operation of its backend ([`Backend`]): on NdArray and Flex a fused
/// kernel with its own backward through time, elsewhere Burn tensor operations step by step.
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

/// How a layer's parameters start, beyond PyTorch's draws.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LayerInit {
    /// Added to an LSTM's initial forget-gate bias (0: PyTorch's).
    pub forget_bias: f64,
    /// How the recurrent weights start.
    pub recurrent: RecurrentInit,
    /// The gate (index in the cell's gate order) whose recurrent block starts as the identity.
    pub identity_gate: Option<usize>,
}

impl LayerInit {
    /// `weight_hh` `[H, G·H]`: PyTorch's uniform draw, or one orthogonal H × H block per gate (the
    /// transposed layout keeps a block orthogonal), with the identity in place of `identity_gate`'s.
    fn recurrent_weights<B: Backend>(
        &self,
        cell: Cell,
        hidden: usize,
        uniform: &Initializer,
        device: &B::Device,
    ) -> Param<Tensor<B, 2>> {
        let gates = cell.gates();
        if self.recurrent == RecurrentInit::Pytorch && self.identity_gate.is_none() {
            return uniform.init([hidden, gates * hidden], device);
        }
        let blocks: Vec<Tensor<B, 2>> = (0..gates)
            .map(|gate| {
                if Some(gate) == self.identity_gate {
                    Tensor::eye(hidden, device)
                } else {
                    match self.recurrent {
                        RecurrentInit::Pytorch => uniform.init([hidden, hidden], device).val(),
                        RecurrentInit::Orthogonal => orthogonal(hidden, device),
                    }
                }
            })
            .collect();
        Param::from_tensor(join::cat(blocks, 1))
    }
}

/// A random orthogonal `n × n` matrix: a standard normal draw of the backend's seeded generator,
/// orthonormalized in f64 on the host (modified Gram-Schmidt, twice, with PyTorch's sign convention:
/// the QR factor's diagonal made positive), then rounded to f32. Burn's own `Initializer::Orthogonal`
/// works in f32 and leaves |QᵀQ − I| around 1e-5 already at n = 16.
fn orthogonal<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 2> {
    let drawn: Tensor<B, 2> = Tensor::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let values = drawn
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap_or_default();
    // Columns of the draw, orthonormalized one after the other.
    let mut columns: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..n).map(|i| values[i * n + j]).collect())
        .collect();
    for j in 0..n {
        let (done, rest) = columns.split_at_mut(j);
        let column = &mut rest[0];
        let original: Vec<f64> = column.clone();
        for _ in 0..2 {
            for q in done.iter() {
                let dot: f64 = q.iter().zip(column.iter()).map(|(a, b)| a * b).sum();
                column.iter_mut().zip(q).for_each(|(c, q)| *c -= dot * q);
            }
        }
        let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
        // R's diagonal entry is <q, original>; make it positive, as PyTorch does.
        let sign = if column
            .iter()
            .zip(&original)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            < 0.0
        {
            -1.0
        } else {
            1.0
        };
        column.iter_mut().for_each(|v| *v *= sign / norm);
    }
    let matrix: Vec<f32> = (0..n * n).map(|k| columns[k % n][k / n] as f32).collect();
    Tensor::from_data(TensorData::new(matrix, [n, n]), device)
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
    /// peephole weights, which PyTorch lacks, are drawn from the same distribution. An LSTM adds
    /// `init.forget_bias` to the forget gate's part of `bias_ih` after the draw (other cells take 0), so
    /// that the random draws, and with 0 the values, are PyTorch's. `init.recurrent` and
    /// `init.identity_gate` replace the recurrent weights' draw (see [`LayerInit`]).
    pub fn new(
        cell: Cell,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        init: LayerInit,
        device: &B::Device,
    ) -> Self {
        let forget_bias = init.forget_bias;
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let uniform = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let gates = cell.gates() * hidden_size;
        let bias_param = || bias.then(|| uniform.init([gates], device));
        let peephole = || (cell == Cell::PeepholeLstm).then(|| uniform.init([hidden_size], device));
        // Built in PyTorch's order, as before this option existed.
        let weight_ih = uniform.init([input_size, gates], device);
        let weight_hh = init.recurrent_weights(cell, hidden_size, &uniform, device);
        let forget = hidden_size..2 * hidden_size;
        let bias_ih = match bias_param() {
            Some(param) if forget_bias != 0.0 && cell.has_cell_state() => {
                Some(param.init_mapper(move |drawn| {
                    // Shift the drawn values, then rebuild them as a new leaf, so that the
                    // optimizer sees one parameter tensor, as with any other initialization.
                    let require_grad = drawn.is_require_grad();
                    let device = drawn.device();
                    let drawn = drawn.detach();
                    let shifted = drawn.clone().slice(forget.clone()).add_scalar(forget_bias);
                    let values = drawn.slice_assign(forget.clone(), shifted).into_data();
                    Tensor::from_data(values, &device).set_require_grad(require_grad)
                }))
            }
            param => param,
        };
        Self {
            weight_ih,
            weight_hh,
            bias_ih,
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

    /// The layer's parameters as its operation reads them.
    pub fn weights(&self) -> LayerWeights<B> {
        let peepholes = match (&self.weight_ci, &self.weight_cf, &self.weight_co) {
            (Some(ci), Some(cf), Some(co)) => Some([ci.val(), cf.val(), co.val()]),
            _ => None,
        };
        LayerWeights {
            cell: self.cell,
            weight_ih: self.weight_ih.val(),
            weight_hh: self.weight_hh.val(),
            bias_ih: self.bias_ih.as_ref().map(Param::val),
            bias_hh: self.bias_hh.as_ref().map(Param::val),
            peepholes,
        }
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
        let (sequence, state) = self.forward_sequence(Sequence::Whole(input), state);
        let sequence = keep_sequence.then(|| sequence.into_whole(&state.hidden.device()));
        (sequence, state)
    }

    /// Runs the layer over `input` from `state` (zeros when `None`) as one operation
    /// ([`recurrent_ops::lengths::layer`]); returns the hidden state after every step, in the form
    /// the backend made it, and the final state.
    pub fn forward_sequence(
        &self,
        input: Sequence<B>,
        state: Option<RecurrentState<B>>,
    ) -> (Sequence<B>, RecurrentState<B>) {
        recurrent_ops::lengths::layer(&self.weights(), input, state, None)
    }

    /// [`forward_sequence`](Self::forward_sequence) over a padded batch whose sequence `b` is
    /// `lengths[b]` steps long (each in `1..=time`; every step when `None`), as PyTorch runs a packed
    /// sequence: each final state is the state after the sequence's own last step, the output is zero
    /// past each length, and the padding reaches no output or gradient (see
    /// [`recurrent_ops::lengths`]).
    pub fn forward_lengths(
        &self,
        input: Sequence<B>,
        state: Option<RecurrentState<B>>,
        lengths: Option<&[usize]>,
    ) -> (Sequence<B>, RecurrentState<B>) {
        recurrent_ops::lengths::layer(&self.weights(), input, state, lengths)
    }

    /// [`forward_lengths`](Self::forward_lengths)' final state alone, for a layer whose per-step
    /// outputs nobody reads: the fused CPU kernels then never write them.
    pub fn final_state_lengths(
        &self,
        input: Sequence<B>,
        state: Option<RecurrentState<B>>,
        lengths: Option<&[usize]>,
    ) -> RecurrentState<B> {
        recurrent_ops::lengths::final_state(&self.weights(), input, state, lengths)
    }
}
