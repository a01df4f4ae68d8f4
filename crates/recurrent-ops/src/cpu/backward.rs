//! The backward pass of a fused layer: through time in reverse, then the weight gradients over all
//! steps at once.

use super::chunks::{MIN_WORK_PER_CHUNK_TRAINING, rows_per_chunk, run, split, split_mut};
use super::gemm::{Mat, matmul, tall_product, transpose};
use super::step_product::small_matmul;
use super::{Dims, Grads, Initial, Lengths, Params, residual_width};
use crate::Cell;

/// The rows of one chunk of the batch, and the parts of every buffer that belong to them.
struct Chunk<'a> {
    rows: usize,
    /// Each row's length, longest first.
    lengths: &'a [usize],
    h0: Option<&'a [f32]>,
    c0: Option<&'a [f32]>,
    packed: &'a [f32],
    residuals: &'a [f32],
    grad: &'a [f32],
    /// Gradients of the gate pre-activations as the input projection sees them, `[rows, time, G·H]`.
    dgx: &'a mut [f32],
    /// The same as the recurrent product sees them (the GRU only; they differ in the n rows).
    dgh: &'a mut [f32],
    dx: &'a mut [f32],
    dh0: &'a mut [f32],
    dc0: &'a mut [f32],
}

/// What the forward pass left for the backward pass: its packed output and residuals.
#[derive(Debug, Clone, Copy)]
pub struct Saved<'a> {
    /// `[batch, time + S, H]`.
    pub packed: &'a [f32],
    /// `[batch, time, R]`.
    pub residuals: &'a [f32],
}

/// Gradients of everything the layer read, from `grad`, the gradient of the packed output of
/// `forward` (run with its residuals kept) on the same inputs and `lengths`; the input's only when
/// `input_grad`. Steps past a row's length take no part: their output gradients are not read, and the
/// input's gradient there is zero.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dims: Dims,
    params: &Params<'_>,
    x: &[f32],
    initial: Initial<'_>,
    lengths: Lengths<'_>,
    forward: Saved<'_>,
    grad: &[f32],
    input_grad: bool,
) -> Grads {
    dims.check(params, x, &initial);
    let shorter = lengths.any_shorter(&dims);
    let lengths = lengths.resolve(&dims);
    // The weight gradients sum over every (row, step); past a row's length the gate gradients are
    // zero, and the input there, which may hold anything, is read as zero.
    let masked_x: Vec<f32>;
    let x = if shorter {
        masked_x = zero_past_lengths(x, &lengths, dims.time, dims.input);
        &masked_x[..]
    } else {
        x
    };
    let cell = params.cell;
    let (batch, time, h) = (dims.batch, dims.time, dims.hidden);
    let gh = dims.gates(cell);
    let packed_row = dims.packed_row(cell);
    let rw = residual_width(cell, h);
    assert_eq!(
        forward.packed.len(),
        batch * packed_row,
        "packed output size"
    );
    assert_eq!(grad.len(), batch * packed_row, "output gradient size");
    assert_eq!(forward.residuals.len(), batch * time * rw, "residuals size");

    let mut dgx = vec![0.0; batch * time * gh];
    let mut dgh = if cell == Cell::Gru {
        vec![0.0; batch * time * gh]
    } else {
        Vec::new()
    };
    let mut dx = if input_grad {
        vec![0.0; batch * time * dims.input]
    } else {
        Vec::new()
    };
    let mut dh0 = vec![
        0.0;
        if initial.hidden.is_some() {
            batch * h
        } else {
            0
        }
    ];
    let mut dc0 = vec![0.0; if initial.cell.is_some() { batch * h } else { 0 }];

    let rows = rows_per_chunk(
        batch,
        2 * dims.work_per_sequence(cell),
        MIN_WORK_PER_CHUNK_TRAINING,
        None,
    );
    let count = batch.div_ceil(rows);
    let h0s = initial.hidden.map(|s| split(s, h, rows, count));
    let c0s = initial.cell.map(|s| split(s, h, rows, count));
    let packeds = split(forward.packed, packed_row, rows, count);
    let residuals = split(forward.residuals, time * rw, rows, count);
    let grads = split(grad, packed_row, rows, count);
    let mut dgxs = split_mut(&mut dgx, time * gh, rows, count).into_iter();
    let mut dghs = split_mut(&mut dgh, time * gh, rows, count).into_iter();
    let mut dxs = split_mut(&mut dx, time * dims.input, rows, count).into_iter();
    let mut dh0s = split_mut(&mut dh0, h, rows, count).into_iter();
    let mut dc0s = split_mut(&mut dc0, h, rows, count).into_iter();
    let tasks: Vec<Chunk<'_>> = (0..count)
        .map(|k| Chunk {
            rows: rows.min(batch - k * rows),
            lengths: &lengths[k * rows..][..rows.min(batch - k * rows)],
            h0: h0s.as_ref().map(|s| s[k]),
            c0: c0s.as_ref().map(|s| s[k]),
            packed: packeds[k],
            residuals: residuals[k],
            grad: grads[k],
            dgx: dgxs.next().expect("one piece per chunk"),
            dgh: dghs.next().expect("one piece per chunk"),
            dx: dxs.next().expect("one piece per chunk"),
            dh0: dh0s.next().expect("one piece per chunk"),
            dc0: dc0s.next().expect("one piece per chunk"),
        })
        .collect();
    // The recurrent weights transposed, `[G·H, H]`, for the carry's per-step product.
    let weight_hh_t = transpose(params.weight_hh, h, gh);
    run(tasks, |chunk| {
        backward_chunk(&dims, params, &weight_hh_t, input_grad, chunk)
    });

    let dgh: &[f32] = if cell == Cell::Gru { &dgh } else { &dgx };
    let (weight_ih, weight_hh) =
        weight_grads(&dims, cell, x, forward.packed, initial.hidden, &dgx, dgh);
    // Except for the GRU both biases see the same gate gradients: their sums are computed once.
    let bias_ih = params.bias_ih.map(|_| column_sums(&dgx, gh));
    let bias_hh = params.bias_hh.map(|_| match &bias_ih {
        Some(sums) if cell != Cell::Gru => sums.clone(),
        _ => column_sums(dgh, gh),
    });
    let peepholes = (cell == Cell::PeepholeLstm)
        .then(|| peephole_grads(&dims, &dgx, forward.residuals, initial.cell));
    Grads {
        input: input_grad.then_some(dx),
        weight_ih,
        weight_hh,
        bias_ih,
        bias_hh,
        peepholes,
        hidden: initial.hidden.map(|_| dh0),
        cell: initial.cell.map(|_| dc0),
    }
}

/// `x` `[batch, time, width]` with every step past its row's length set to zero.
fn zero_past_lengths(x: &[f32], lengths: &[usize], time: usize, width: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    for (row, &length) in out.chunks_exact_mut(time * width).zip(lengths) {
        row[length * width..].fill(0.0);
    }
    out
}

/// The gradients of `weight_ih` `[input, G·H]` and `weight_hh` `[H, G·H]`: sums over every
/// (row, step) of the step's input, or the hidden state it started from, times the gate gradients.
/// Except for the GRU, whose two products read different gate gradients, both are one product with
/// `[x | h_prev]`, so that the gate gradients — the large operand, `[batch·time, G·H]` — are read once.
/// Each element is the same chain of fused multiply-adds as in the two products apart, in the same
/// order, so the bits do not depend on it.
#[allow(clippy::too_many_arguments)]
fn weight_grads(
    dims: &Dims,
    cell: Cell,
    x: &[f32],
    packed: &[f32],
    h0: Option<&[f32]>,
    dgx: &[f32],
    dgh: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let (input, h, gh) = (dims.input, dims.hidden, dims.gates(cell));
    let all_rows = dims.batch * dims.time;
    let tall = |data, width| -> Mat<'_> { Mat::rows(data, all_rows, width, width) };
    if cell == Cell::Gru {
        let h_prev = step_operands(dims, cell, None, packed, h0);
        return rayon::join(
            || tall_product(tall(x, input), tall(dgx, gh)),
            || tall_product(tall(&h_prev, h), tall(dgh, gh)),
        );
    }
    let xh = step_operands(dims, cell, Some(x), packed, h0);
    let mut weight_ih = tall_product(tall(&xh, input + h), tall(dgx, gh));
    let weight_hh = weight_ih.split_off(input * gh);
    (weight_ih, weight_hh)
}

/// `[batch·time, input + H]` (or `[batch·time, H]` without `x`): each step's input, then the hidden
/// state the step started from (the initial one, or zeros, first).
fn step_operands(
    dims: &Dims,
    cell: Cell,
    x: Option<&[f32]>,
    packed: &[f32],
    h0: Option<&[f32]>,
) -> Vec<f32> {
    let (time, h) = (dims.time, dims.hidden);
    let input = if x.is_some() { dims.input } else { 0 };
    let width = input + h;
    let packed_row = dims.packed_row(cell);
    let mut out = vec![0.0; dims.batch * time * width];
    for (b, rows) in out.chunks_exact_mut(time * width).enumerate() {
        for (t, row) in rows.chunks_exact_mut(width).enumerate() {
            let (step_input, hidden) = row.split_at_mut(input);
            if let Some(x) = x {
                step_input.copy_from_slice(&x[(b * time + t) * input..][..input]);
            }
            if t > 0 {
                hidden.copy_from_slice(&packed[b * packed_row + (t - 1) * h..][..h]);
            } else if let Some(h0) = h0 {
                hidden.copy_from_slice(&h0[b * h..][..h]);
            }
        }
    }
    out
}

/// Sums of the columns of a row-major matrix with `width` columns, row after row, accumulated in f64:
/// a batch of 64 pixel sequences is 50 176 rows, too many for an f32 running sum.
fn column_sums(matrix: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; width];
    for row in matrix.chunks_exact(width) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += f64::from(*v);
        }
    }
    sums.into_iter().map(|s| s as f32).collect()
}

/// Gradients of the peephole weights: sums over every step of every sequence, in row order, in f64.
fn peephole_grads(
    dims: &Dims,
    dgx: &[f32],
    residuals: &[f32],
    c0: Option<&[f32]>,
) -> [Vec<f32>; 3] {
    let (time, h) = (dims.time, dims.hidden);
    let (gh, rw) = (4 * h, 6 * h);
    let zeros = vec![0.0; h];
    let [mut ci, mut cf, mut co] = [vec![0.0f64; h], vec![0.0f64; h], vec![0.0f64; h]];
    for b in 0..dims.batch {
        for t in 0..time {
            let row = b * time + t;
            let d = &dgx[row * gh..][..gh];
            let c = &residuals[row * rw + 4 * h..][..h];
            let c_prev = if t > 0 {
                &residuals[(row - 1) * rw + 4 * h..][..h]
            } else {
                c0.map_or(&zeros[..], |c0| &c0[b * h..][..h])
            };
            for j in 0..h {
                ci[j] += f64::from(d[j] * c_prev[j]);
                cf[j] += f64::from(d[h + j] * c_prev[j]);
                co[j] += f64::from(d[3 * h + j] * c[j]);
            }
        }
    }
    [ci, cf, co].map(|sums| sums.into_iter().map(|s| s as f32).collect())
}

by_instruction_set! {
fn backward_chunk(
    dims: &Dims,
    params: &Params<'_>,
    weight_hh_t: &[f32],
    input_grad: bool,
    chunk: Chunk<'_>,
) {
    let cell = params.cell;
    let (time, h) = (dims.time, dims.hidden);
    let gh = dims.gates(cell);
    let packed_row = dims.packed_row(cell);
    let rw = residual_width(cell, h);
    let rows = chunk.rows;
    let zeros = vec![0.0; h];

    // The gradients carried to the previous step: of the hidden state and of the cell state,
    // starting from those of the final state.
    let mut dh = vec![0.0; rows * h];
    let mut dc = vec![0.0; rows * h];
    for r in 0..rows {
        let g = &chunk.grad[r * packed_row + time * h..];
        dh[r * h..][..h].copy_from_slice(&g[..h]);
        if cell.has_cell_state() {
            dc[r * h..][..h].copy_from_slice(&g[h..2 * h]);
        }
    }
    let mut dh_step = vec![0.0; h];

    for t in (0..time).rev() {
        let has_hidden = t > 0 || chunk.h0.is_some();
        let has_cell = t > 0 || chunk.c0.is_some();
        // Rows sorted longest first: the rows running at step t are a prefix. A row that has not
        // started yet (going backwards) keeps the gradient of its final state in its carry.
        let running = chunk.lengths.partition_point(|&length| length > t);
        for r in 0..running {
            let g = &chunk.grad[r * packed_row + t * h..][..h];
            let carry = &mut dh[r * h..][..h];
            for j in 0..h {
                dh_step[j] = g[j] + carry[j];
            }
            let at = (r * time + t) * gh;
            let dgx = &mut chunk.dgx[at..at + gh];
            let residual = &chunk.residuals[(r * time + t) * rw..][..rw];
            match cell {
                Cell::Lstm | Cell::PeepholeLstm => {
                    let c_prev = if t > 0 {
                        &chunk.residuals[(r * time + t - 1) * rw + 4 * h..][..h]
                    } else {
                        chunk.c0.map_or(&zeros[..], |c0| &c0[r * h..][..h])
                    };
                    let dc_row = &mut dc[r * h..][..h];
                    if cell == Cell::Lstm {
                        lstm_step(h, &dh_step, residual, c_prev, dc_row, dgx);
                    } else {
                        let peepholes = params
                            .peepholes
                            .expect("a peephole layer has its peephole weights");
                        peephole_step(h, peepholes, has_cell, &dh_step, residual, c_prev, dc_row, dgx);
                    }
                }
                Cell::Gru => {
                    let h_prev = if t > 0 {
                        &chunk.packed[r * packed_row + (t - 1) * h..][..h]
                    } else {
                        chunk.h0.map_or(&zeros[..], |h0| &h0[r * h..][..h])
                    };
                    let dgh = &mut chunk.dgh[at..at + gh];
                    // The direct path h' = … + z ⊙ h goes into the carry; the product is added below.
                    gru_step(h, &dh_step, residual, h_prev, carry, dgx, dgh);
                }
                Cell::Rnn => {
                    let hidden = &chunk.packed[r * packed_row + t * h..][..h];
                    for j in 0..h {
                        dgx[j] = dh_step[j] * (1.0 - hidden[j] * hidden[j]);
                    }
                }
            }
        }
        if has_hidden {
            // Carry to the previous step: the gate gradients through the recurrent weights.
            let (dg, accumulate) = if cell == Cell::Gru {
                (&*chunk.dgh, true)
            } else {
                (&*chunk.dgx, false)
            };
            small_matmul(running, gh, h, &dg[t * gh..], time * gh, weight_hh_t, &mut dh, h, accumulate);
        }
    }
    if chunk.h0.is_some() {
        chunk.dh0.copy_from_slice(&dh);
    }
    if chunk.c0.is_some() {
        chunk.dc0.copy_from_slice(&dc);
    }
    if input_grad {
        matmul(
            Mat::rows(chunk.dgx, rows * time, gh, gh),
            Mat::rows(params.weight_ih, dims.input, gh, gh).t(),
            chunk.dx,
            dims.input,
            false,
        );
    }
}

}

/// The `N` consecutive parts of `h` values of a step's residual (`i, f, g, o, c, tanh c` for the
/// LSTMs, `r, z, n, W_hn h + b_hn` for the GRU).
#[inline(always)]
fn parts<const N: usize>(residual: &[f32], h: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| &residual[k * h..(k + 1) * h])
}

/// One LSTM step back: from the gradient of its hidden state `dh` and of its cell state (the carry
/// `dc`, replaced by that of the previous cell state) to the gate pre-activations.
#[inline(always)]
fn lstm_step(
    h: usize,
    dh: &[f32],
    residual: &[f32],
    c_prev: &[f32],
    dc: &mut [f32],
    dg: &mut [f32],
) {
    let [i, f, g, o, _c, tanh_c] = parts::<6>(residual, h);
    for j in 0..h {
        let d_o = dh[j] * tanh_c[j];
        let d_c = dc[j] + dh[j] * o[j] * (1.0 - tanh_c[j] * tanh_c[j]);
        let d_i = d_c * g[j];
        let d_f = d_c * c_prev[j];
        let d_g = d_c * i[j];
        dc[j] = d_c * f[j];
        dg[j] = d_i * i[j] * (1.0 - i[j]);
        dg[h + j] = d_f * f[j] * (1.0 - f[j]);
        dg[2 * h + j] = d_g * (1.0 - g[j] * g[j]);
        dg[3 * h + j] = d_o * o[j] * (1.0 - o[j]);
    }
}

/// [`lstm_step`] for the peephole LSTM, whose gates also read the cell states.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn peephole_step(
    h: usize,
    [w_ci, w_cf, w_co]: [&[f32]; 3],
    has_cell: bool,
    dh: &[f32],
    residual: &[f32],
    c_prev: &[f32],
    dc: &mut [f32],
    dg: &mut [f32],
) {
    let [i, f, g, o, _c, tanh_c] = parts::<6>(residual, h);
    for j in 0..h {
        let d_ao = dh[j] * tanh_c[j] * o[j] * (1.0 - o[j]);
        let d_c = dc[j] + dh[j] * o[j] * (1.0 - tanh_c[j] * tanh_c[j]) + d_ao * w_co[j];
        let d_ai = d_c * g[j] * i[j] * (1.0 - i[j]);
        let d_af = d_c * c_prev[j] * f[j] * (1.0 - f[j]);
        dc[j] = if has_cell {
            d_c * f[j] + d_ai * w_ci[j] + d_af * w_cf[j]
        } else {
            0.0
        };
        dg[j] = d_ai;
        dg[h + j] = d_af;
        dg[2 * h + j] = d_c * i[j] * (1.0 - g[j] * g[j]);
        dg[3 * h + j] = d_ao;
    }
}

/// One GRU step back. `carry` receives the direct path's part of the previous hidden state's
/// gradient (`dh ⊙ z`); `dgx` the gradients as the input projection sees them, `dgh` as the
/// recurrent part sees them.
#[inline(always)]
fn gru_step(
    h: usize,
    dh: &[f32],
    residual: &[f32],
    h_prev: &[f32],
    carry: &mut [f32],
    dgx: &mut [f32],
    dgh: &mut [f32],
) {
    let [r, z, n, hp_n] = parts::<4>(residual, h);
    for j in 0..h {
        let d_n = dh[j] * (1.0 - z[j]);
        let d_z = dh[j] * (h_prev[j] - n[j]);
        carry[j] = dh[j] * z[j];
        let d_an = d_n * (1.0 - n[j] * n[j]);
        let d_r = d_an * hp_n[j];
        let d_ar = d_r * r[j] * (1.0 - r[j]);
        let d_az = d_z * z[j] * (1.0 - z[j]);
        dgx[j] = d_ar;
        dgx[h + j] = d_az;
        dgx[2 * h + j] = d_an;
        dgh[j] = d_ar;
        dgh[h + j] = d_az;
        dgh[2 * h + j] = d_an * r[j];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm::tests::values;

    /// The transposed, shared product gives the bits of the two direct ones, `x^T × dgx` and
    /// `h_prev^T × dgh`, over several blocks of rows and on the pool.
    #[test]
    fn weight_grads_are_the_direct_products() {
        for (cell, batch, time, input, hidden) in [
            (Cell::Lstm, 3, 5, 28, 10),
            (Cell::Lstm, 7, 150, 1, 64),
            (Cell::Gru, 4, 70, 3, 20),
            (Cell::Rnn, 2, 300, 5, 33),
        ] {
            let dims = Dims {
                batch,
                time,
                input,
                hidden,
            };
            let (gh, all_rows) = (dims.gates(cell), batch * time);
            let x = values(all_rows * input, 1);
            let packed = values(batch * dims.packed_row(cell), 2);
            let h0 = values(batch * hidden, 3);
            let dgx = values(all_rows * gh, 4);
            let dgh = if cell == Cell::Gru {
                values(all_rows * gh, 5)
            } else {
                dgx.clone()
            };
            let (weight_ih, weight_hh) =
                weight_grads(&dims, cell, &x, &packed, Some(&h0), &dgx, &dgh);

            let h_prev = step_operands(&dims, cell, None, &packed, Some(&h0));
            let direct = |a: Mat<'_>, d: &[f32]| {
                let mut out = vec![0.0; a.rows * gh];
                matmul(a, Mat::rows(d, all_rows, gh, gh), &mut out, gh, false);
                out
            };
            let expected_ih = direct(Mat::rows(&x, all_rows, input, input).t(), &dgx);
            let expected_hh = direct(Mat::rows(&h_prev, all_rows, hidden, hidden).t(), &dgh);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&weight_ih), bits(&expected_ih), "{cell:?} weight_ih");
            assert_eq!(bits(&weight_hh), bits(&expected_hh), "{cell:?} weight_hh");
            // The hidden operand: h0 first, then the packed output's steps.
            assert_eq!(h_prev[..hidden], h0[..hidden]);
            assert_eq!(h_prev[hidden..2 * hidden], packed[..hidden]);
        }
    }
}
