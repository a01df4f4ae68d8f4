//! The fused recurrent layer on the CPU, over raw f32 buffers: what NdArray and Flex run.
//!
//! Forward: the input projection of all time steps is one matrix product; each step is one
//! `[G·H, H] × [H, rows]` product and one pass over the gates (the [`math`] functions, vectorized,
//! no libm call) in a feature-major layout, with no allocation inside the time loop. Backward through time walks the steps in
//! reverse from the saved gate activations, producing the gate gradients of every step; the weight
//! gradients are then one matrix product each over all steps.
//!
//! Batch rows are independent until the weight gradients, so the batch is split into contiguous
//! chunks, one per thread of rayon's pool (when there is enough work). Every element is computed by the
//! same operations in the same order whatever the split, and the weight gradients and sums over the
//! batch are computed once over all rows, in row order: the bits do not depend on the thread count.
//!
//! Layouts (row-major): input `[batch, time, in]`; packed output `[batch, time + S, H]` (see
//! [`FusedOutput::packed`](crate::FusedOutput::packed)); residuals `[batch, time, R]` with
//! R = [`residual_width`]: the LSTMs keep `i, f, g, o, c, tanh c`, the GRU `r, z, n` and
//! `W_hn h + b_hn`, the tanh RNN nothing (its hidden states are the output).

/// Defines `$name`, which runs `$body` compiled for the [`InstructionSet`] the kernels run on:
/// AVX-512F, AVX2 with FMA, or the baseline. The source is the same IEEE operations for all three
/// (fused multiply-adds written as [`f32::mul_add`], which rounds once on every path), so the bits
/// are the same either way; the wider builds only make the vectors wider.
macro_rules! by_instruction_set {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                match $crate::cpu::isa::instruction_set() {
                    // SAFETY: `instruction_set` returns only paths this CPU can run
                    // (`InstructionSet::is_available`): AVX-512F with AVX2 and FMA here.
                    $crate::cpu::InstructionSet::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above, AVX2 and FMA.
                    $crate::cpu::InstructionSet::Avx2Fma => return unsafe { avx2($($arg),*) },
                    $crate::cpu::InstructionSet::Portable => {}
                }
            }
            body($($arg),*)
        }
    };
}

mod backward;
mod chunks;
mod forward;
mod gemm;
mod helper;
mod host;
mod isa;
pub mod math;
mod one_sequence;
mod step_product;
mod transpose;

pub use backward::{Saved, backward};
pub use forward::forward;
pub use isa::{InstructionSet, Unavailable, instruction_set, set_instruction_set};

use crate::Cell;

/// Sizes of one layer call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Sequences in the batch.
    pub batch: usize,
    /// Time steps.
    pub time: usize,
    /// Features per step read.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
}

/// A layer's parameters as slices, in the layout of [`LayerWeights`](crate::LayerWeights).
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// The cell.
    pub cell: Cell,
    /// `[in, G·H]`.
    pub weight_ih: &'a [f32],
    /// `[H, G·H]`.
    pub weight_hh: &'a [f32],
    /// `[G·H]`.
    pub bias_ih: Option<&'a [f32]>,
    /// `[G·H]`.
    pub bias_hh: Option<&'a [f32]>,
    /// `[H]` each: `w_ci, w_cf, w_co`.
    pub peepholes: Option<[&'a [f32]; 3]>,
}

/// The initial state, `[batch, H]` each; zeros where `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Initial<'a> {
    /// Hidden state.
    pub hidden: Option<&'a [f32]>,
    /// Cell state (LSTM cells).
    pub cell: Option<&'a [f32]>,
}

/// Each sequence's length, for a batch of sequences of different lengths padded to the longest: one
/// per row, non-increasing (the rows sorted longest first), each in `1..=time`. `None`: every row runs
/// every step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lengths<'a>(pub Option<&'a [usize]>);

impl<'a> Lengths<'a> {
    /// One length per row, every step where none are given; panics on lengths that break the contract.
    fn resolve(self, dims: &Dims) -> std::borrow::Cow<'a, [usize]> {
        match self.0 {
            None => vec![dims.time; dims.batch].into(),
            Some(lengths) => {
                assert_eq!(lengths.len(), dims.batch, "one length per row");
                assert!(
                    lengths.windows(2).all(|w| w[0] >= w[1]),
                    "lengths sorted longest first"
                );
                assert!(
                    lengths.iter().all(|l| (1..=dims.time).contains(l)),
                    "lengths in 1..=time"
                );
                lengths.into()
            }
        }
    }

    /// Whether some row stops before the last step.
    fn any_shorter(self, dims: &Dims) -> bool {
        self.0.is_some_and(|l| l.iter().any(|&l| l < dims.time))
    }
}

/// The packed output and, when asked for, the residuals of a forward pass.
#[derive(Debug, Clone)]
pub struct Forward {
    /// `[batch, time + S, H]`.
    pub packed: Vec<f32>,
    /// `[batch, time, R]`; empty when not kept.
    pub residuals: Vec<f32>,
}

/// Gradients of a backward pass, in the layouts of the tensors they belong to.
#[derive(Debug, Clone)]
pub struct Grads {
    /// `[batch, time, in]`, when asked for.
    pub input: Option<Vec<f32>>,
    /// `[in, G·H]`.
    pub weight_ih: Vec<f32>,
    /// `[H, G·H]`.
    pub weight_hh: Vec<f32>,
    /// `[G·H]`, when the layer has the bias.
    pub bias_ih: Option<Vec<f32>>,
    /// `[G·H]`, when the layer has the bias.
    pub bias_hh: Option<Vec<f32>>,
    /// `[H]` each, for the peephole LSTM.
    pub peepholes: Option<[Vec<f32>; 3]>,
    /// `[batch, H]`, when an initial hidden state was given.
    pub hidden: Option<Vec<f32>>,
    /// `[batch, H]`, when an initial cell state was given.
    pub cell: Option<Vec<f32>>,
}

/// Values per step and sequence that the backward pass of `cell` reads from the residuals.
pub fn residual_width(cell: Cell, hidden: usize) -> usize {
    match cell {
        Cell::Lstm | Cell::PeepholeLstm => 6 * hidden,
        Cell::Gru => 4 * hidden,
        Cell::Rnn => 0,
    }
}

impl Dims {
    fn gates(&self, cell: Cell) -> usize {
        cell.gates() * self.hidden
    }

    /// Values per sequence in the packed output.
    fn packed_row(&self, cell: Cell) -> usize {
        (self.time + crate::backend::packed_extra_rows(cell)) * self.hidden
    }

    /// The forward's output per sequence: `(values, where the final state starts)` — every step's
    /// output then the final state with `outputs`, the final state alone (`S` rows of H) without.
    fn output_layout(&self, cell: Cell, outputs: bool) -> (usize, usize) {
        let steps = if outputs { self.time } else { 0 };
        let final_at = steps * self.hidden;
        (
            final_at + crate::backend::packed_extra_rows(cell) * self.hidden,
            final_at,
        )
    }

    /// Multiply-adds per sequence of a forward pass, to decide how many threads are worth it.
    fn work_per_sequence(&self, cell: Cell) -> usize {
        self.time * self.gates(cell) * (self.input + self.hidden + 8)
    }

    fn check(&self, params: &Params<'_>, x: &[f32], initial: &Initial<'_>) {
        let gh = self.gates(params.cell);
        assert_eq!(x.len(), self.batch * self.time * self.input, "input size");
        assert_eq!(params.weight_ih.len(), self.input * gh, "weight_ih size");
        assert_eq!(params.weight_hh.len(), self.hidden * gh, "weight_hh size");
        for bias in [params.bias_ih, params.bias_hh].into_iter().flatten() {
            assert_eq!(bias.len(), gh, "bias size");
        }
        assert_eq!(
            params.peepholes.is_some(),
            params.cell == Cell::PeepholeLstm,
            "peephole weights go with the peephole LSTM"
        );
        for w in params.peepholes.iter().flatten() {
            assert_eq!(w.len(), self.hidden, "peephole size");
        }
        for state in [initial.hidden, initial.cell].into_iter().flatten() {
            assert_eq!(state.len(), self.batch * self.hidden, "initial state size");
        }
    }
}
