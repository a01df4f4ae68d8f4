//! What one recurrent layer reads and returns: its weights, its state and the sequences it maps.

use burn::tensor::{Tensor, backend::Backend};

use crate::Cell;
use crate::join;

/// The parameters of one layer, laid out like the matching PyTorch layer but transposed: `[in, G·H]`
/// and `[H, G·H]` (G the cell's gate count), so that a step is one `h @ W` product. Gate columns keep
/// PyTorch's order.
#[derive(Debug, Clone)]
pub struct LayerWeights<B: Backend> {
    /// The cell the layer runs.
    pub cell: Cell,
    /// Input weights `[input_size, G·H]`.
    pub weight_ih: Tensor<B, 2>,
    /// Recurrent weights `[H, G·H]`.
    pub weight_hh: Tensor<B, 2>,
    /// Input bias `[G·H]` (PyTorch's `bias_ih`).
    pub bias_ih: Option<Tensor<B, 1>>,
    /// Recurrent bias `[G·H]` (PyTorch's `bias_hh`; the GRU applies it inside the reset gate).
    pub bias_hh: Option<Tensor<B, 1>>,
    /// Peephole weights `[H]` each, `[w_ci, w_cf, w_co]` (peephole LSTM only).
    pub peepholes: Option<[Tensor<B, 1>; 3]>,
}

impl<B: Backend> LayerWeights<B> {
    /// Hidden size H.
    pub fn hidden_size(&self) -> usize {
        self.weight_hh.dims()[0]
    }

    /// Features per time step the layer reads.
    pub fn input_size(&self) -> usize {
        self.weight_ih.dims()[0]
    }

    /// The device the weights live on.
    pub fn device(&self) -> B::Device {
        self.weight_hh.device()
    }
}

/// State of one recurrent layer between time steps, each tensor `[batch, hidden]`.
#[derive(Debug, Clone)]
pub struct RecurrentState<B: Backend> {
    /// Hidden state `h`.
    pub hidden: Tensor<B, 2>,
    /// Cell state `c` of the LSTM cells; `None` for the GRU and the tanh RNN.
    pub cell: Option<Tensor<B, 2>>,
}

impl<B: Backend> RecurrentState<B> {
    /// The same state cut from the graph that made it: what a window hands the next one in
    /// truncated back-propagation through time.
    pub fn detach(self) -> Self {
        Self {
            hidden: self.hidden.detach(),
            cell: self.cell.map(Tensor::detach),
        }
    }
}

/// A sequence between layers, in the form its producer made it, so that no layer converts what the
/// next one would convert back.
///
/// The fused kernels read and write [`Whole`](Sequence::Whole) tensors. The step-by-step fallback
/// reads and writes [`Steps`](Sequence::Steps): under autodiff, slicing every step out of a tracked
/// `[batch, time, ·]` tensor costs time quadratic in its length (each slice's backward fills a
/// gradient the size of the whole sequence), which matters for 784-step pixel MNIST.
#[derive(Debug, Clone)]
pub enum Sequence<B: Backend> {
    /// One `[batch, time, features]` tensor.
    Whole(Tensor<B, 3>),
    /// One `[batch, features]` tensor per time step.
    Steps {
        /// The steps, first to last.
        steps: Vec<Tensor<B, 2>>,
        /// Batch size (kept for sequences of no steps).
        batch: usize,
        /// Features per step (kept for sequences of no steps).
        features: usize,
    },
}

impl<B: Backend> Sequence<B> {
    /// `[batch, time, features]`.
    pub fn dims(&self) -> [usize; 3] {
        match self {
            Sequence::Whole(tensor) => tensor.dims(),
            Sequence::Steps {
                steps,
                batch,
                features,
            } => [*batch, steps.len(), *features],
        }
    }

    /// The sequence as one `[batch, time, features]` tensor on `device`.
    pub fn into_whole(self, device: &B::Device) -> Tensor<B, 3> {
        match self {
            Sequence::Whole(tensor) => tensor,
            Sequence::Steps {
                steps,
                batch,
                features,
            } => {
                if steps.is_empty() {
                    Tensor::zeros([batch, 0, features], device)
                } else {
                    join::stack(steps, 1)
                }
            }
        }
    }

    /// The same steps, last first: what the reverse direction of a bidirectional layer reads.
    pub fn reversed(self) -> Self {
        match self {
            Sequence::Whole(tensor) => Sequence::Whole(tensor.flip([1])),
            Sequence::Steps {
                mut steps,
                batch,
                features,
            } => {
                steps.reverse();
                Sequence::Steps {
                    steps,
                    batch,
                    features,
                }
            }
        }
    }

    /// `self` and `other` (same batch and length) side by side at every step: `[batch, time, f₁ + f₂]`,
    /// in the form of `self` when both have it.
    pub fn concat_features(self, other: Self, device: &B::Device) -> Self {
        match (self, other) {
            (
                Sequence::Steps {
                    steps: left,
                    batch,
                    features: f1,
                },
                Sequence::Steps {
                    steps: right,
                    features: f2,
                    ..
                },
            ) => Sequence::Steps {
                steps: left
                    .into_iter()
                    .zip(right)
                    .map(|(l, r)| join::cat(vec![l, r], 1))
                    .collect(),
                batch,
                features: f1 + f2,
            },
            (left, right) => Sequence::Whole(join::cat(
                vec![left.into_whole(device), right.into_whole(device)],
                2,
            )),
        }
    }

    /// Applies `f` to the sequence, whichever form it has (element-wise work such as dropout).
    pub fn map_values(self, f: impl Fn(Tensor<B, 3>) -> Tensor<B, 3>) -> Self {
        match self {
            Sequence::Whole(tensor) => Sequence::Whole(f(tensor)),
            Sequence::Steps {
                steps,
                batch,
                features,
            } => Sequence::Steps {
                steps: steps
                    .into_iter()
                    .map(|step| f(step.unsqueeze_dim(1)).squeeze_dim(1))
                    .collect(),
                batch,
                features,
            },
        }
    }

    /// The sequence as one `[batch, features]` tensor per step.
    pub fn into_steps(self) -> Vec<Tensor<B, 2>> {
        match self {
            Sequence::Steps { steps, .. } => steps,
            Sequence::Whole(tensor) => {
                let [batch, time, features] = tensor.dims();
                (0..time)
                    .map(|t| tensor.clone().narrow(1, t, 1).reshape([batch, features]))
                    .collect()
            }
        }
    }
}

/// Checks `lengths` against a batch of `batch` sequences of `time` steps: one length per sequence,
/// each in `1..=time`. Panics with a message that says which one is wrong: lengths are computed by the
/// caller's data pipeline, not typed by a user.
pub fn check_lengths(lengths: &[usize], batch: usize, time: usize) {
    assert_eq!(
        lengths.len(),
        batch,
        "{} lengths given for a batch of {batch} sequences",
        lengths.len()
    );
    if let Some((row, length)) = lengths
        .iter()
        .enumerate()
        .find(|(_, l)| **l == 0 || **l > time)
    {
        panic!("sequence {row} has length {length}; lengths must lie in 1..={time}");
    }
}
