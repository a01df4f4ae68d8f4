//! The forward pass of a fused layer.

use super::chunks::{
    MIN_WORK_PER_CHUNK, MIN_WORK_PER_CHUNK_TRAINING, rows_per_chunk, run, split, split_mut,
};
use super::gemm::{Mat, matmul, matmul_few_columns, transpose};
use super::math::{sigmoid_in_place, tanh_in_place};
use super::step_product::small_matmul;
use super::transpose::{BLOCK_ROWS, rows_to_columns};
use super::{Dims, Forward, Initial, Lengths, Params, residual_width};
use crate::Cell;

/// Floats of input projection computed at a time (1 MiB): a window of steps, at least one.
const PROJECTION_FLOATS: usize = 1 << 18;

/// The rows of one chunk of the batch, and the parts of every buffer that belong to them.
struct Chunk<'a> {
    rows: usize,
    /// Each row's length, longest first.
    lengths: &'a [usize],
    x: &'a [f32],
    h0: Option<&'a [f32]>,
    c0: Option<&'a [f32]>,
    packed: &'a mut [f32],
    residuals: &'a mut [f32],
    /// Whether `packed` holds every step's output before the final state, or the final state alone.
    outputs: bool,
}

/// Runs the layer over `x` `[batch, time, in]` from `initial`; keeps the residuals the backward pass
/// reads when `keep_residuals`. With `lengths` (see [`Lengths`]) row `b` runs its first `lengths[b]`
/// steps only: its outputs past them stay zero, its final state is the one after its own last step,
/// and the input past them is never read. Without `outputs` the packed output is `[batch, S, H]`, the
/// final state alone (see [`Dims::output_layout`]), and no step's output is written.
pub fn forward(
    dims: Dims,
    params: &Params<'_>,
    x: &[f32],
    initial: Initial<'_>,
    lengths: Lengths<'_>,
    keep_residuals: bool,
    outputs: bool,
) -> Forward {
    dims.check(params, x, &initial);
    let lengths = lengths.resolve(&dims);
    let cell = params.cell;
    let h = dims.hidden;
    let (packed_row, _) = dims.output_layout(cell, outputs);
    let residual_row = if keep_residuals {
        dims.time * residual_width(cell, h)
    } else {
        0
    };
    let mut packed = vec![0.0; dims.batch * packed_row];
    let mut residuals = vec![0.0; dims.batch * residual_row];
    let bias = folded_bias(params);
    let length = lengths.first().copied().unwrap_or(0);
    if super::one_sequence::applies(&dims, cell, keep_residuals, length) {
        let (_, final_at) = dims.output_layout(cell, outputs);
        super::one_sequence::forward(
            &dims,
            params,
            bias.as_deref(),
            x,
            initial,
            length,
            outputs,
            final_at,
            &mut packed,
            true,
        );
        return Forward { packed, residuals };
    }

    let min_work = if keep_residuals {
        MIN_WORK_PER_CHUNK_TRAINING
    } else {
        MIN_WORK_PER_CHUNK
    };
    let rows = rows_per_chunk(
        dims.batch,
        dims.work_per_sequence(cell),
        min_work,
        Some(dims.gates(cell) + 2 * h),
    );
    let count = dims.batch.div_ceil(rows);
    let xs = split(x, dims.time * dims.input, rows, count);
    let h0s = initial.hidden.map(|s| split(s, h, rows, count));
    let c0s = initial.cell.map(|s| split(s, h, rows, count));
    let tasks: Vec<Chunk<'_>> = split_mut(&mut packed, packed_row, rows, count)
        .into_iter()
        .zip(split_mut(&mut residuals, residual_row, rows, count))
        .enumerate()
        .map(|(k, (packed, residuals))| Chunk {
            rows: rows.min(dims.batch - k * rows),
            lengths: &lengths[k * rows..][..rows.min(dims.batch - k * rows)],
            x: xs[k],
            h0: h0s.as_ref().map(|s| s[k]),
            c0: c0s.as_ref().map(|s| s[k]),
            packed,
            residuals,
            outputs,
        })
        .collect();
    let transposed;
    let recurrent = if dims.batch == 1 {
        RecurrentWeights::Rows(params.weight_hh)
    } else {
        transposed = transpose(params.weight_hh, h, dims.gates(cell));
        RecurrentWeights::Transposed(&transposed)
    };
    run(tasks, |chunk| {
        forward_chunk(&dims, params, recurrent, bias.as_deref(), chunk)
    });
    Forward { packed, residuals }
}

/// The recurrent weights as each step's product reads them; every element of the product is the
/// same chain of fused multiply-adds either way.
#[derive(Clone, Copy)]
enum RecurrentWeights<'a> {
    /// `[G·H, H]`, multiplied by the `[H, rows]` state: copied once per call, paid back over a batch.
    Transposed(&'a [f32]),
    /// `[H, G·H]` where they lie, multiplied by a single row's state (`rows` = 1): no copy, which is
    /// most of a one-step call's cost (generation, one character at a time).
    Rows(&'a [f32]),
}

impl RecurrentWeights<'_> {
    /// `out (+)= W_hhᵀ × state` into the feature-major `[G·H, rows]` `out`.
    #[inline(always)]
    fn product(
        self,
        gh: usize,
        h: usize,
        rows: usize,
        state: &[f32],
        out: &mut [f32],
        accumulate: bool,
    ) {
        match self {
            RecurrentWeights::Transposed(w) => {
                small_matmul(gh, h, rows, w, h, state, out, rows, accumulate)
            }
            RecurrentWeights::Rows(w) => {
                assert_eq!(rows, 1, "untransposed recurrent weights serve one row");
                small_matmul(1, h, gh, state, h, w, out, gh, accumulate)
            }
        }
    }
}

/// The bias added to the input projection: both biases summed, except for the GRU, whose recurrent
/// bias sits inside the reset gate's product.
pub(super) fn folded_bias(params: &Params<'_>) -> Option<Vec<f32>> {
    match (params.cell, params.bias_ih, params.bias_hh) {
        (Cell::Gru, b_ih, _) => b_ih.map(<[f32]>::to_vec),
        (_, Some(b_ih), Some(b_hh)) => Some(b_ih.iter().zip(b_hh).map(|(a, b)| a + b).collect()),
        (_, Some(b), None) | (_, None, Some(b)) => Some(b.to_vec()),
        (_, None, None) => None,
    }
}

by_instruction_set! {
fn forward_chunk(
    dims: &Dims,
    params: &Params<'_>,
    recurrent_weights: RecurrentWeights<'_>,
    bias: Option<&[f32]>,
    chunk: Chunk<'_>,
) {
    // Feature-major inside the chunk: the state is `[H, rows]` and a step's gates `[G·H, rows]`, so
    // every element-wise pass runs over whole blocks of `H · rows` values, however small H is.
    let cell = params.cell;
    let (time, h, input) = (dims.time, dims.hidden, dims.input);
    let gh = dims.gates(cell);
    let (packed_row, final_at) = dims.output_layout(cell, chunk.outputs);
    let rw = residual_width(cell, h);
    let keep = !chunk.residuals.is_empty();
    let all_rows = chunk.rows;
    // Rows are sorted longest first, so the rows still running at step t are the first `active(t)`.
    let active = |t: usize| chunk.lengths.partition_point(|&length| length > t);

    // The input projection, `[G·H, columns]` with columns in (step, row) order over the rows running
    // at each step: one product of the transposed weights with those inputs, for a window of steps at
    // a time, small enough to stay in cache (each element's bits do not depend on which columns are
    // computed with it). `offsets[s]` is the first column of the window's step s.
    //
    // One sequence alone (a word transcribed, a text generated) has as many columns as steps, too few
    // to pay for packing the weights: its projection is step-major instead, `[columns, G·H]`, the
    // steps' inputs (rows of x) times the weights where they lie, with the same bits, in windows of at
    // most 64 steps (each block of 8 steps reads the weights once).
    let step_major = all_rows == 1;
    let window = (PROJECTION_FLOATS / (gh * all_rows).max(1)).clamp(1, time.max(1));
    let window = if step_major { window.min(64) } else { window };
    let mut offsets = Vec::with_capacity(window);
    let mut inputs_t = vec![0.0; if step_major { 0 } else { window * all_rows * input }];
    let mut projection = vec![0.0; gh * window * all_rows];
    let (mut window_start, mut columns) = (0, 0);
    let mut project = |start: usize, projection: &mut [f32], offsets: &mut Vec<usize>| {
        offsets.clear();
        let mut columns = 0;
        let end = (start + window).min(time);
        for t in start..end {
            offsets.push(columns);
            columns += active(t);
        }
        if step_major {
            // The running steps of the one row are `start..start + columns`, rows of x.
            matmul_few_columns(
                params.weight_ih,
                input,
                gh,
                &chunk.x[start * input..],
                input,
                columns,
                &mut projection[..columns * gh],
            );
            if let Some(bias) = bias {
                for row in projection[..columns * gh].chunks_exact_mut(gh.max(1)) {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v += b;
                    }
                }
            }
            return columns;
        }
        // The window's inputs feature-major, `[in, columns]`, so that the product packs them as
        // whole vectors: blocks of rows turned into columns, each block's steps in order (a row's
        // steps lie together in memory). The rows running at a step are the first.
        let inputs = &mut inputs_t[..input * columns];
        for r0 in (0..active(start)).step_by(BLOCK_ROWS) {
            for (t, &offset) in (start..end).zip(&*offsets) {
                let rows = active(t).saturating_sub(r0).min(BLOCK_ROWS);
                if rows == 0 {
                    break;
                }
                rows_to_columns(
                    &chunk.x[(r0 * time + t) * input..],
                    time * input,
                    rows,
                    input,
                    &mut inputs[offset + r0..],
                    columns,
                );
            }
        }
        if columns == 1 {
            // `[G·H, 1]` and `[1, G·H]` are the same layout.
            matmul_few_columns(params.weight_ih, input, gh, inputs, input, 1, &mut projection[..gh]);
        } else {
            matmul(
                Mat::rows(params.weight_ih, input, gh, gh).t(),
                Mat::rows(inputs, input, columns, columns),
                &mut projection[..gh * columns],
                columns,
                false,
            );
        }
        if let Some(bias) = bias {
            for (row, b) in projection[..gh * columns].chunks_exact_mut(columns.max(1)).zip(bias) {
                for v in row {
                    *v += b;
                }
            }
        }
        columns
    };

    // The state of the running rows, feature-major `[H, rows]`: when rows finish, their final state
    // is written out and the others close up, so every pass below covers running rows only.
    let mut hidden_buf = vec![0.0; h * all_rows];
    let mut cell_buf = vec![0.0; h * all_rows];
    if let Some(h0) = chunk.h0 {
        scatter_transposed(h0, all_rows, h, &mut hidden_buf);
    }
    if let Some(c0) = chunk.c0 {
        scatter_transposed(c0, all_rows, h, &mut cell_buf);
    }
    let mut gates_buf = vec![0.0; gh * all_rows];
    let mut recurrent_buf = vec![0.0; gh * all_rows];
    let mut tanh_c_buf = vec![0.0; h * all_rows];
    let mut rows = all_rows;

    for t in 0..time {
        let running = active(t);
        if running < rows {
            // Rows `running..rows` ended with the previous step.
            let finished = running..rows;
            write_final(&hidden_buf, rows, h, finished.clone(), &mut chunk.packed[final_at..], packed_row);
            close_up(&mut hidden_buf, h, rows, running);
            if cell.has_cell_state() {
                write_final(&cell_buf, rows, h, finished, &mut chunk.packed[final_at + h..], packed_row);
                close_up(&mut cell_buf, h, rows, running);
            }
            rows = running;
        }
        if rows == 0 {
            // Every row has ended (the longest is shorter than the batch's steps).
            break;
        }
        let block = h * rows;
        let hidden = &mut hidden_buf[..block];
        let cell_state = &mut cell_buf[..block];
        let gates = &mut gates_buf[..gh * rows];
        let recurrent = &mut recurrent_buf[..gh * rows];
        let tanh_c = &mut tanh_c_buf[..block];
        let has_hidden = t > 0 || chunk.h0.is_some();
        let has_cell = t > 0 || chunk.c0.is_some();
        if t == window_start + window || t == 0 {
            window_start = t;
            columns = project(t, &mut projection, &mut offsets);
        }
        let offset = offsets[t - window_start];
        if step_major {
            // The one row is running (`rows == 0` ended the loop above).
            gates.copy_from_slice(&projection[offset * gh..][..gh]);
        } else {
            for j in 0..gh {
                gates[j * rows..][..rows].copy_from_slice(&projection[j * columns + offset..][..rows]);
            }
        }
        match cell {
            Cell::Lstm | Cell::PeepholeLstm => {
                if has_hidden {
                    recurrent_weights.product(gh, h, rows, hidden, gates, true);
                }
                lstm_gates(gates, cell_state, tanh_c, hidden, params.peepholes, has_cell, rows);
                if keep {
                    let out = &mut chunk.residuals[t * rw..];
                    gather_transposed(gates, rows, 4 * h, out, time * rw, 0);
                    gather_transposed(cell_state, rows, h, out, time * rw, 4 * h);
                    gather_transposed(tanh_c, rows, h, out, time * rw, 5 * h);
                }
            }
            Cell::Gru => {
                // The recurrent part `W_h h + b_h`, where there is one, in `recurrent`.
                let has_hp = has_hidden || params.bias_hh.is_some();
                if has_hidden {
                    recurrent_weights.product(gh, h, rows, hidden, recurrent, false);
                } else {
                    recurrent.fill(0.0);
                }
                if let Some(b) = params.bias_hh {
                    for (row, b) in recurrent.chunks_exact_mut(rows.max(1)).zip(b) {
                        for v in row {
                            *v += b;
                        }
                    }
                }
                let (rz, n) = gates.split_at_mut(2 * block);
                if has_hp {
                    for (g, r) in rz.iter_mut().zip(&recurrent[..2 * block]) {
                        *g += r;
                    }
                }
                sigmoid_in_place(rz);
                if has_hp {
                    let (reset, hp_n) = (&rz[..block], &recurrent[2 * block..]);
                    for k in 0..block {
                        n[k] += reset[k] * hp_n[k];
                    }
                }
                tanh_in_place(n);
                let update = &rz[block..];
                if has_hidden {
                    for k in 0..block {
                        hidden[k] = (1.0 - update[k]) * n[k] + update[k] * hidden[k];
                    }
                } else {
                    for k in 0..block {
                        hidden[k] = (1.0 - update[k]) * n[k];
                    }
                }
                if keep {
                    let out = &mut chunk.residuals[t * rw..];
                    gather_transposed(gates, rows, 3 * h, out, time * rw, 0);
                    gather_transposed(&recurrent[2 * block..], rows, h, out, time * rw, 3 * h);
                }
            }
            Cell::Rnn => {
                if has_hidden {
                    recurrent_weights.product(gh, h, rows, hidden, gates, true);
                }
                tanh_in_place(gates);
                hidden.copy_from_slice(gates);
            }
        }
        if chunk.outputs {
            gather_transposed(hidden, rows, h, &mut chunk.packed[t * h..], packed_row, 0);
        }
    }
    // The rows that ran every step.
    gather_transposed(&hidden_buf[..h * rows], rows, h, &mut chunk.packed[final_at..], packed_row, 0);
    if cell.has_cell_state() {
        gather_transposed(&cell_buf[..h * rows], rows, h, &mut chunk.packed[final_at + h..], packed_row, 0);
    }
}
}

/// The element-wise part of an LSTM step on feature-major `[units, rows]` blocks: `gates` holds the
/// `i, f, g, o` pre-activations (products and bias added), `cell` the previous cell state (read only
/// when `has_cell`), replaced by the new one; writes `tanh c` and the hidden state. `peepholes`, the
/// peephole LSTM's `w_ci, w_cf, w_co` (one per unit), add the cell state to the gates.
#[inline(always)]
pub(super) fn lstm_gates(
    gates: &mut [f32],
    cell: &mut [f32],
    tanh_c: &mut [f32],
    hidden: &mut [f32],
    peepholes: Option<[&[f32]; 3]>,
    has_cell: bool,
    rows: usize,
) {
    let block = cell.len();
    let (ifg, o) = gates.split_at_mut(3 * block);
    if let (Some([w_ci, w_cf, _]), true) = (peepholes, has_cell) {
        add_scaled_rows(&mut ifg[..block], cell, w_ci, rows);
        add_scaled_rows(&mut ifg[block..2 * block], cell, w_cf, rows);
    }
    sigmoid_in_place(&mut ifg[..2 * block]);
    tanh_in_place(&mut ifg[2 * block..]);
    let (i, fg) = ifg.split_at(block);
    let (f, g) = fg.split_at(block);
    if has_cell {
        for k in 0..block {
            cell[k] = f[k] * cell[k] + i[k] * g[k];
        }
    } else {
        for k in 0..block {
            cell[k] = i[k] * g[k];
        }
    }
    if let Some([_, _, w_co]) = peepholes {
        add_scaled_rows(o, cell, w_co, rows);
    }
    sigmoid_in_place(o);
    tanh_c.copy_from_slice(cell);
    tanh_in_place(tanh_c);
    for k in 0..block {
        hidden[k] = o[k] * tanh_c[k];
    }
}

/// Writes the state of rows `finished` out of a feature-major `[H, rows]` state into their rows of
/// `dst` (`stride` apart): the final state of sequences that end here.
#[inline(always)]
fn write_final(
    state: &[f32],
    rows: usize,
    h: usize,
    finished: std::ops::Range<usize>,
    dst: &mut [f32],
    stride: usize,
) {
    for r in finished {
        for j in 0..h {
            dst[r * stride + j] = state[j * rows + r];
        }
    }
}

/// Keeps the first `running` of `rows` columns of a feature-major `[H, rows]` state, closed up into
/// `[H, running]` at the front of the buffer.
#[inline(always)]
fn close_up(state: &mut [f32], h: usize, rows: usize, running: usize) {
    // Feature j moves from j·rows to j·running ≤ j·rows: in increasing j, no source is overwritten
    // before it is read.
    for j in 1..h {
        state.copy_within(j * rows..j * rows + running, j * running);
    }
}

/// `block[j·rows + r] += state[j·rows + r] · w[j]`: a diagonal (peephole) term on feature-major rows.
#[inline(always)]
fn add_scaled_rows(block: &mut [f32], state: &[f32], w: &[f32], rows: usize) {
    for (j, &wj) in w.iter().enumerate() {
        let (b, s) = (&mut block[j * rows..][..rows], &state[j * rows..][..rows]);
        for k in 0..rows {
            b[k] += s[k] * wj;
        }
    }
}

/// `dst[j·rows + r] = src[r·width + j]`: `rows × width` row-major into feature-major.
#[inline(always)]
fn scatter_transposed(src: &[f32], rows: usize, width: usize, dst: &mut [f32]) {
    for r in 0..rows {
        for j in 0..width {
            dst[j * rows + r] = src[r * width + j];
        }
    }
}

/// `dst[r·stride + offset + j] = src[j·rows + r]`: feature-major `[width, rows]` back into rows.
///
/// In tiles of 8 × 8, so that the 8 cache lines of `src` a row reads are still in L1 for the next 7
/// rows (row by row, every read of a large block touched another line).
#[inline(always)]
fn gather_transposed(
    src: &[f32],
    rows: usize,
    width: usize,
    dst: &mut [f32],
    stride: usize,
    offset: usize,
) {
    const TILE: usize = 8;
    for r0 in (0..rows).step_by(TILE) {
        for j0 in (0..width).step_by(TILE) {
            let j_end = (j0 + TILE).min(width);
            for r in r0..(r0 + TILE).min(rows) {
                let out = &mut dst[r * stride + offset + j0..][..j_end - j0];
                for (v, j) in out.iter_mut().zip(j0..j_end) {
                    *v = src[j * rows + r];
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::gemm::tests::values;

    /// A layer's parameters made up for tests (with peephole weights for the peephole LSTM), a
    /// batch of inputs and an initial state.
    pub(crate) struct Fixture {
        cell: Cell,
        weight_ih: Vec<f32>,
        weight_hh: Vec<f32>,
        bias_ih: Vec<f32>,
        bias_hh: Vec<f32>,
        peepholes: [Vec<f32>; 3],
        /// `[batch, time, in]`.
        pub x: Vec<f32>,
        /// `[batch, H]`.
        pub h0: Vec<f32>,
        /// `[batch, H]`.
        pub c0: Vec<f32>,
    }

    impl Fixture {
        pub fn new(cell: Cell, batch: usize, time: usize, input: usize, hidden: usize) -> Self {
            let gh = cell.gates() * hidden;
            Fixture {
                cell,
                weight_ih: values(input * gh, 1),
                weight_hh: values(hidden * gh, 2),
                bias_ih: values(gh, 3),
                bias_hh: values(gh, 4),
                peepholes: [values(hidden, 5), values(hidden, 6), values(hidden, 7)],
                x: values(batch * time * input, 8)
                    .iter()
                    .map(|v| v / 8.0)
                    .collect(),
                h0: values(batch * hidden, 9),
                c0: values(batch * hidden, 10),
            }
        }

        pub fn params(&self) -> Params<'_> {
            Params {
                cell: self.cell,
                weight_ih: &self.weight_ih,
                weight_hh: &self.weight_hh,
                bias_ih: Some(&self.bias_ih),
                bias_hh: Some(&self.bias_hh),
                peepholes: (self.cell == Cell::PeepholeLstm).then(|| {
                    [
                        &self.peepholes[0][..],
                        &self.peepholes[1],
                        &self.peepholes[2],
                    ]
                }),
            }
        }
    }

    /// One sequence alone (its weights read where they lie, a one-column projection at one step)
    /// gives the bits it gets as the first row of a batch (transposed weights, the general product),
    /// for every cell, with and without a state, over one step and several.
    #[test]
    fn one_sequence_gives_the_bits_of_its_row_in_a_batch() {
        for cell in Cell::ALL {
            for (time, input, hidden, with_state) in [
                (1, 300, 40, true),
                (1, 7, 33, false),
                (5, 12, 20, true),
                (9, 300, 24, true),
                (70, 5, 8, false),
                // Windows of a one-sequence projection: one, and two (at most 64 steps each).
                (70, 5, 12, true),
            ] {
                let batch = 3;
                let fixture = Fixture::new(cell, batch, time, input, hidden);
                let params = fixture.params();
                let (x, h0, c0) = (&fixture.x, &fixture.h0, &fixture.c0);
                // Every row runs every step, or the rows stop early (the first row one step short).
                let short: Vec<usize> = (0..batch)
                    .map(|r| time.saturating_sub(1 + r).max(1))
                    .collect();
                let run = |batch: usize, lengths: Option<&[usize]>| {
                    let dims = Dims {
                        batch,
                        time,
                        input,
                        hidden,
                    };
                    let initial = Initial {
                        hidden: with_state.then(|| &h0[..batch * hidden]),
                        cell: with_state.then(|| &c0[..batch * hidden]),
                    };
                    let x = &x[..batch * time * input];
                    let lengths = Lengths(lengths.map(|l| &l[..batch]));
                    forward(dims, &params, x, initial, lengths, false, true).packed
                };
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                for lengths in [None, (time > 2).then_some(&short[..])] {
                    let (alone, together) = (run(1, lengths), run(batch, lengths));
                    assert_eq!(
                        bits(&alone),
                        bits(&together[..alone.len()]),
                        "{cell:?} time {time} input {input} hidden {hidden} state {with_state} \
                         lengths {lengths:?}"
                    );
                }
            }
        }
    }
}
