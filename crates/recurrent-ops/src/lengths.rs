//! Batches of sequences of different lengths, with the semantics of PyTorch's packed sequences: a
//! sequence's final state is its state after its own last step, positions at or past its length never
//! reach any output or gradient, and the output sequence is zero there (as `pad_packed_sequence`
//! gives).
//!
//! The rows are sorted longest first, so the rows still running at any step are a prefix of the batch.
//! Backends whose kernels take lengths (the CPU kernels of NdArray and Flex) run the whole batch as one
//! kernel call that drops each row out of every product and every element-wise pass once it has ended:
//! the work is the sum of the lengths rather than batch × longest, and the padding is never read. Other
//! backends with fused kernels (wgpu) run it in *segments*: the time axis cut where a sequence ends,
//! each segment one call of the backend's kernel over the rows still running, from the state the
//! previous segment left. The rest run the [`fallback`] with a mask per step, which is also the
//! reference both fused paths are tested against.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::join;
pub use crate::layer::check_lengths;
use crate::{LayerWeights, RecurrentBackend, RecurrentState, Sequence, fallback};

pub use crate::dispatch::{final_state, layer};

/// [`layer`] on a backend with kernels, `B` itself: the batch run in one kernel call that skips each
/// row's steps past its length where the kernels take lengths, in [`segmented`] calls where they do
/// not, and through the masked [`fallback`] where the kernels do not apply (another element type).
pub fn kernel_layer<B: RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
) -> (Sequence<B>, RecurrentState<B>) {
    let [batch, time, _] = input.dims();
    let Some(lengths) = lengths else {
        return B::recurrent_layer(weights, input, state);
    };
    check_lengths(lengths, batch, time);
    if lengths.iter().all(|&l| l == time) {
        return B::recurrent_layer(weights, input, state);
    }
    let dtype = weights.weight_hh.dtype();
    if B::fused_runs(weights, &input) && B::fused_layer_lengths_available(weights.cell, dtype) {
        in_kernel(weights, input, state, lengths)
    } else if B::fused_runs(weights, &input) {
        segmented(weights, input, state, lengths)
    } else {
        fallback::masked_layer(weights, input, state, lengths)
    }
}

/// [`kernel_layer`]'s final state alone: the per-step outputs are not made where the backend can skip
/// them (every row running every step; with shorter rows, [`kernel_layer`] runs and its output is
/// dropped).
pub fn kernel_final_state<B: RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
) -> RecurrentState<B> {
    let [batch, time, _] = input.dims();
    match lengths {
        Some(lengths) if lengths.iter().any(|&l| l != time) => {
            kernel_layer(weights, input, state, Some(lengths)).1
        }
        Some(lengths) => {
            check_lengths(lengths, batch, time);
            B::recurrent_layer_final(weights, input, state)
        }
        None => B::recurrent_layer_final(weights, input, state),
    }
}

/// The rows of a batch, longest first (ties in batch order), and where the time axis is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `order[k]`: the batch row that comes k-th.
    pub order: Vec<usize>,
    /// Segments `(start, end, rows)`: steps `start..end` run for the first `rows` sorted rows.
    pub segments: Vec<(usize, usize, usize)>,
}

impl Plan {
    /// The plan for `lengths` (each at least 1).
    pub fn new(lengths: &[usize]) -> Self {
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&row| std::cmp::Reverse(lengths[row]));
        let mut ends: Vec<usize> = lengths.to_vec();
        ends.sort_unstable();
        ends.dedup();
        let mut segments = Vec::with_capacity(ends.len());
        let mut start = 0;
        for end in ends {
            let rows = lengths.iter().filter(|&&l| l >= end).count();
            segments.push((start, end, rows));
            start = end;
        }
        Self { order, segments }
    }

    /// Multiply-add work of the plan relative to running every row for every step: the sum of the
    /// lengths over batch × longest.
    pub fn steps_run(&self) -> usize {
        self.segments
            .iter()
            .map(|(start, end, rows)| (end - start) * rows)
            .sum()
    }
}

fn indices<B: Backend>(values: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let values: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// One kernel call that skips each row's steps past its length: rows sorted longest first, run, and
/// put back in batch order.
fn in_kernel<B: RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: &[usize],
) -> (Sequence<B>, RecurrentState<B>) {
    let device = weights.device();
    let plan = Plan::new(lengths);
    let sorted_lengths: Vec<usize> = plan.order.iter().map(|&row| lengths[row]).collect();
    let in_order = plan.order.iter().enumerate().all(|(k, &row)| k == row);
    if in_order {
        return B::recurrent_layer_lengths(weights, input, state, &sorted_lengths);
    }
    let order = indices::<B>(&plan.order, &device);
    let sorted = input.into_whole(&device).select(0, order.clone());
    let state = state.map(|s| RecurrentState {
        hidden: s.hidden.select(0, order.clone()),
        cell: s.cell.map(|c| c.select(0, order.clone())),
    });
    let (sequence, state) =
        B::recurrent_layer_lengths(weights, Sequence::Whole(sorted), state, &sorted_lengths);
    let back = indices::<B>(&inverse(&plan.order), &device);
    let state = RecurrentState {
        hidden: state.hidden.select(0, back.clone()),
        cell: state.cell.map(|c| c.select(0, back.clone())),
    };
    let sequence = sequence.into_whole(&device).select(0, back);
    (Sequence::Whole(sequence), state)
}

/// The segmented run (see the module documentation): what [`kernel_layer`] does on backends whose fused
/// kernels take no lengths (wgpu). Public so that it can be tested on every backend; `lengths` as for
/// [`kernel_layer`].
pub fn segmented<B: RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: &[usize],
) -> (Sequence<B>, RecurrentState<B>) {
    let device = weights.device();
    let [batch, time, _] = input.dims();
    check_lengths(lengths, batch, time);
    let hidden = weights.hidden_size();
    let plan = Plan::new(lengths);
    let order = indices::<B>(&plan.order, &device);
    let sorted = input.into_whole(&device).select(0, order.clone());
    let mut state = state.map(|s| RecurrentState {
        hidden: s.hidden.select(0, order.clone()),
        cell: s.cell.map(|c| c.select(0, order.clone())),
    });

    // Final states of the rows that finished, last rows first; outputs of every segment.
    let mut finished: Vec<RecurrentState<B>> = Vec::new();
    let mut outputs: Vec<Tensor<B, 3>> = Vec::with_capacity(plan.segments.len() + 1);
    let mut running = batch;
    for &(start, end, rows) in &plan.segments {
        if let Some(current) = state.take() {
            if rows < running {
                finished.push(narrow_state(current.clone(), rows, running - rows));
            }
            state = Some(narrow_state(current, 0, rows));
        }
        running = rows;
        let x = sorted.clone().slice([0..rows, start..end]);
        let (out, next) = B::recurrent_layer(weights, Sequence::Whole(x), state.take());
        let out = out.into_whole(&device);
        outputs.push(pad_rows(out, batch, &device));
        state = Some(next);
    }
    let last = state.expect("every plan has a segment: lengths are at least 1");
    finished.push(last);
    finished.reverse();
    let order_back = indices::<B>(&inverse(&plan.order), &device);
    let final_state = RecurrentState {
        hidden: join::cat(finished.iter().map(|s| s.hidden.clone()).collect(), 0)
            .select(0, order_back.clone()),
        cell: weights.cell.has_cell_state().then(|| {
            join::cat(
                finished
                    .iter()
                    .map(|s| s.cell.clone().expect("an LSTM state has a cell state"))
                    .collect(),
                0,
            )
            .select(0, order_back.clone())
        }),
    };
    let longest = plan.segments.last().map_or(0, |s| s.1);
    if longest < time {
        outputs.push(Tensor::zeros([batch, time - longest, hidden], &device));
    }
    let sequence = join::cat(outputs, 1).select(0, order_back);
    (Sequence::Whole(sequence), final_state)
}

fn narrow_state<B: Backend>(
    state: RecurrentState<B>,
    start: usize,
    rows: usize,
) -> RecurrentState<B> {
    RecurrentState {
        hidden: state.hidden.narrow(0, start, rows),
        cell: state.cell.map(|c| c.narrow(0, start, rows)),
    }
}

/// `[rows, t, H]` with zero rows appended up to `batch`.
fn pad_rows<B: Backend>(out: Tensor<B, 3>, batch: usize, device: &B::Device) -> Tensor<B, 3> {
    let [rows, t, h] = out.dims();
    if rows == batch {
        return out;
    }
    join::cat(vec![out, Tensor::zeros([batch - rows, t, h], device)], 0)
}

fn inverse(order: &[usize]) -> Vec<usize> {
    let mut inverse = vec![0; order.len()];
    for (k, &row) in order.iter().enumerate() {
        inverse[row] = k;
    }
    inverse
}

/// Each sequence reversed within its own length, the padding left where it is: what the reverse
/// direction of a bidirectional layer reads (PyTorch starts it at each sequence's own last step).
/// Applied twice it gives the sequence back, so it also turns the reverse direction's output around.
pub fn reverse_within<B: Backend>(
    sequence: Sequence<B>,
    lengths: &[usize],
    device: &B::Device,
) -> Sequence<B> {
    let [batch, time, features] = sequence.dims();
    check_lengths(lengths, batch, time);
    // One index per (row, step) into the `[batch · time, features]` view: a row select, not a gather
    // with an index per value.
    let mut index = Vec::with_capacity(batch * time);
    for (row, &length) in lengths.iter().enumerate() {
        for t in 0..time {
            let source = if t < length { length - 1 - t } else { t };
            index.push((row * time + source) as i64);
        }
    }
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [batch * time]), device);
    let flat = sequence
        .into_whole(device)
        .reshape([batch * time, features]);
    Sequence::Whole(flat.select(0, index).reshape([batch, time, features]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_sorts_longest_first_and_cuts_where_sequences_end() {
        let plan = Plan::new(&[3, 5, 3, 1]);
        assert_eq!(plan.order, vec![1, 0, 2, 3]);
        assert_eq!(plan.segments, vec![(0, 1, 4), (1, 3, 3), (3, 5, 1)]);
        assert_eq!(plan.steps_run(), 3 + 5 + 3 + 1);
    }

    #[test]
    #[should_panic(expected = "sequence 1 has length 0")]
    fn zero_length_is_refused() {
        check_lengths(&[2, 0], 2, 4);
    }

    #[test]
    #[should_panic(expected = "lengths must lie in 1..=4")]
    fn length_past_the_padding_is_refused() {
        check_lengths(&[5], 1, 4);
    }
}
