//! The backend extension: one recurrent layer over one sequence as a single operation.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor};

use crate::join;
use crate::{Cell, LayerWeights, RecurrentState, Sequence, fallback};

/// A Burn backend that runs a whole recurrent layer over a whole sequence as one operation.
///
/// Every method has a default body built from Burn tensor operations, so `impl RecurrentBackend for
/// MyBackend {}` is a complete implementation. Backends with native kernels (NdArray and Flex here)
/// override [`recurrent_layer`](Self::recurrent_layer) for inference and the `fused_*` methods, which
/// `Autodiff<B>` uses to record one node per layer with a hand-written backward through time.
pub trait RecurrentBackend: Backend {
    /// Runs the layer over `input` `[batch, time, in]` from `state` (zeros when `None`); returns the
    /// hidden state after every step `[batch, time, H]` and the final state.
    fn recurrent_layer(
        weights: &LayerWeights<Self>,
        input: Sequence<Self>,
        state: Option<RecurrentState<Self>>,
    ) -> (Sequence<Self>, RecurrentState<Self>) {
        fallback::layer(weights, input, state)
    }

    /// [`recurrent_layer`](Self::recurrent_layer)'s final state alone, for a layer whose per-step
    /// outputs nobody reads (the last layer of a classifier): backends with kernels skip writing them.
    fn recurrent_layer_final(
        weights: &LayerWeights<Self>,
        input: Sequence<Self>,
        state: Option<RecurrentState<Self>>,
    ) -> RecurrentState<Self> {
        Self::recurrent_layer(weights, input, state).1
    }

    /// Whether [`recurrent_layer`](Self::recurrent_layer) runs `weights` over `input` through the
    /// backend's native kernels (rather than the [`fallback`]): what decides how a batch of sequences
    /// of different lengths is run (see [`crate::lengths`]).
    fn fused_runs(weights: &LayerWeights<Self>, input: &Sequence<Self>) -> bool {
        let _ = (weights, input);
        false
    }

    /// Whether the native kernels take [`FusedLayer::lengths`]: where [`fused_runs`](Self::fused_runs)
    /// holds too, [`recurrent_layer_lengths`](Self::recurrent_layer_lengths) is then one kernel call
    /// that skips each row's steps past its length.
    fn fused_layer_lengths_available(_cell: Cell, _dtype: DType) -> bool {
        false
    }

    /// [`recurrent_layer`](Self::recurrent_layer) over a padded batch whose rows are sorted longest
    /// first, `lengths` non-increasing, each in `1..=time`: the output sequence, zero past each length,
    /// and each row's state after its own last step. The default runs the masked [`fallback`].
    fn recurrent_layer_lengths(
        weights: &LayerWeights<Self>,
        input: Sequence<Self>,
        state: Option<RecurrentState<Self>>,
        lengths: &[usize],
    ) -> (Sequence<Self>, RecurrentState<Self>) {
        fallback::masked_layer(weights, input, state, lengths)
    }

    /// Whether [`fused_layer_forward`](Self::fused_layer_forward) and
    /// [`fused_layer_backward`](Self::fused_layer_backward) run natively for this cell and element
    /// type. When true, `Autodiff<Self>` records one node per layer; otherwise it differentiates the
    /// [`fallback`] operation by operation.
    fn fused_layer_available(_cell: Cell, _dtype: DType) -> bool {
        false
    }

    /// The layer as one operation: the [packed](FusedOutput::packed) output, and what the backward
    /// reads when `keep_residuals` is true. The default runs the [`fallback`] and keeps nothing.
    fn fused_layer_forward(layer: &FusedLayer<Self>, keep_residuals: bool) -> FusedOutput<Self> {
        let _ = keep_residuals;
        fallback::forward(layer)
    }

    /// Gradients of the layer's inputs from `grad`, the gradient of the packed output of
    /// [`fused_layer_forward`](Self::fused_layer_forward) (run with `keep_residuals`); the input's
    /// gradient only when `input_grad`. The default recomputes the [`fallback`] under
    /// `Autodiff<Self>` and differentiates it.
    fn fused_layer_backward(
        layer: &FusedLayer<Self>,
        output: &FusedOutput<Self>,
        grad: Tensor<Self, 3>,
        input_grad: bool,
    ) -> LayerGrads<Self> {
        let _ = (output, input_grad);
        fallback::backward(layer, grad)
    }
}

/// Whether the fused kernels of `Inner` run `weights` over `input` (tensors of `B`: `Inner` itself, or
/// `Autodiff<Inner>`): the kernels exist for the cell and element type, and the input has the weights'
/// element type.
pub(crate) fn fused_applies<Inner: RecurrentBackend, B: Backend>(
    weights: &LayerWeights<B>,
    input: &Sequence<B>,
) -> bool {
    let dtype = weights.weight_hh.dtype();
    let input_dtype = match input {
        Sequence::Whole(tensor) => tensor.dtype(),
        Sequence::Steps { steps, .. } => steps.first().map_or(dtype, Tensor::dtype),
    };
    input_dtype == dtype
        && fused_kernels_enabled()
        && Inner::fused_layer_available(weights.cell, dtype)
}

/// Inference through a backend's fused forward without residuals, or the [`fallback`] where the kernels
/// do not apply: the body of `recurrent_layer` for the GPU backends (the CPU backends split the
/// packed output on the host instead).
#[cfg(feature = "cube")]
pub(crate) fn fused_inference<B: RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
) -> (Sequence<B>, RecurrentState<B>) {
    if !fused_applies::<B, B>(weights, &input) {
        return match lengths {
            None => fallback::layer(weights, input, state),
            Some(lengths) => fallback::masked_layer(weights, input, state, lengths),
        };
    }
    let layer = FusedLayer {
        weights: weights.clone(),
        input: input.into_whole(&weights.device()),
        state,
        lengths: lengths.map(<[usize]>::to_vec),
    };
    let (sequence, state) = unpack(B::fused_layer_forward(&layer, false).packed, weights.cell);
    (Sequence::Whole(sequence), state)
}

static FUSED_KERNELS: AtomicBool = AtomicBool::new(true);

/// Turns the fused kernels of every backend on (the default) or off for the whole process: off, every
/// layer runs the step-by-step [`fallback`], the baseline that `bench --model step-by-step` measures.
pub fn set_fused_kernels(enabled: bool) {
    FUSED_KERNELS.store(enabled, Ordering::Relaxed);
}

/// Whether layers run the backends' fused kernels (see [`set_fused_kernels`]).
pub fn fused_kernels_enabled() -> bool {
    FUSED_KERNELS.load(Ordering::Relaxed)
}

/// Everything one layer reads for one sequence.
#[derive(Debug, Clone)]
pub struct FusedLayer<B: Backend> {
    /// The layer's parameters.
    pub weights: LayerWeights<B>,
    /// The sequence `[batch, time, in]`.
    pub input: Tensor<B, 3>,
    /// The initial state; zeros when `None`.
    pub state: Option<RecurrentState<B>>,
    /// Each row's length when the rows are sequences of different lengths, padded: non-increasing
    /// (rows sorted longest first), each in `1..=time`. `None`: every row runs every step. Only
    /// backends whose [`fused_lengths_run`](RecurrentBackend::fused_lengths_run) says so are given
    /// lengths.
    pub lengths: Option<Vec<usize>>,
}

/// The output of a fused layer.
#[derive(Debug, Clone)]
pub struct FusedOutput<B: Backend> {
    /// `[batch, time + S, H]`: the hidden state after every step, then the final hidden state and,
    /// for the LSTM cells, the final cell state (S = 2; S = 1 for the GRU and the tanh RNN). One
    /// tensor, because an autodiff operation in Burn 0.21 has one output.
    pub packed: Tensor<B, 3>,
    /// Whatever the backend's backward reads besides the inputs and `packed` (gate activations of
    /// every step, say), in a layout of the backend's own.
    pub residuals: Option<Tensor<B, 3>>,
}

/// Gradients of everything a layer reads; `None` where the layer has no such tensor.
#[derive(Debug, Clone)]
pub struct LayerGrads<B: Backend> {
    /// Of the input sequence, when asked for.
    pub input: Option<Tensor<B, 3>>,
    /// Of the input weights.
    pub weight_ih: Tensor<B, 2>,
    /// Of the recurrent weights.
    pub weight_hh: Tensor<B, 2>,
    /// Of the input bias.
    pub bias_ih: Option<Tensor<B, 1>>,
    /// Of the recurrent bias.
    pub bias_hh: Option<Tensor<B, 1>>,
    /// Of the peephole weights.
    pub peepholes: Option<[Tensor<B, 1>; 3]>,
    /// Of the initial hidden state, when one was given.
    pub hidden: Option<Tensor<B, 2>>,
    /// Of the initial cell state, when one was given.
    pub cell: Option<Tensor<B, 2>>,
}

/// Rows of the packed output after the `time` hidden states: the final hidden state, and the final
/// cell state for cells that have one.
pub fn packed_extra_rows(cell: Cell) -> usize {
    1 + usize::from(cell.has_cell_state())
}

/// Packs a layer's output sequence `[batch, time, H]` and final state into one `[batch, time + S, H]`
/// tensor (see [`FusedOutput::packed`]).
pub fn pack<B: Backend>(sequence: Tensor<B, 3>, state: RecurrentState<B>) -> Tensor<B, 3> {
    let mut parts = vec![sequence, state.hidden.unsqueeze_dim(1)];
    parts.extend(state.cell.map(|c| c.unsqueeze_dim(1)));
    join::cat(parts, 1)
}

/// The output sequence and the final state out of a packed output (see [`FusedOutput::packed`]).
pub fn unpack<B: Backend>(packed: Tensor<B, 3>, cell: Cell) -> (Tensor<B, 3>, RecurrentState<B>) {
    let [batch, rows, hidden] = packed.dims();
    let time = rows - packed_extra_rows(cell);
    let row = |t: usize| packed.clone().narrow(1, t, 1).reshape([batch, hidden]);
    let state = RecurrentState {
        hidden: row(time),
        cell: cell.has_cell_state().then(|| row(time + 1)),
    };
    (packed.narrow(1, 0, time), state)
}

/// An autodiff backend over a [`RecurrentBackend`] that is one itself: the bound training code
/// needs (`B::InnerBackend`, on which validation runs, is then a `RecurrentBackend` too).
pub trait RecurrentAutodiffBackend:
    AutodiffBackend<InnerBackend: RecurrentBackend> + RecurrentBackend
{
}

impl<B> RecurrentAutodiffBackend for B
where
    B: AutodiffBackend + RecurrentBackend,
    B::InnerBackend: RecurrentBackend,
{
}
