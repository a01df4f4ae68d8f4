//! The CubeCL kernels: the recurrence of a whole sequence in one launch, forward and backward.
//!
//! One cube (workgroup) runs `sequences` sequences of the batch side by side, one per unit row
//! (`UNIT_POS_Y`); [`Call::plan`](super::plan::Call::plan) sizes it to the device. A row's units stride
//! over the hidden units. Forward, a unit computes its hidden unit's gate columns of the recurrent
//! product and its state update at once, reading the hidden state from one shared buffer and writing
//! the other: one barrier per step. Backward, a unit computes its hidden unit's gate gradients, then
//! (after a barrier) its element of the gradient carried to the step before: one barrier per step
//! when the gate gradients fit in two buffers (`double`), else two. Small layers, where each unit
//! owns one hidden unit, keep its cell state and carried gradients in registers and exchange partial
//! sums of the carry instead of the gate gradients ([`recurrence_backward_own`]).
//! On lavapipe (CI's software Vulkan) every memory access inside the step loop, global or workgroup,
//! costs a pass over the SIMD lanes, so the kernels count them: the input is read up to 4 features
//! at a time where its layout allows (`N`), and small layers keep in registers what only their own
//! unit reads.
//! Rows past the batch (in the last cube) compute on a copy of the last sequence and write nothing.
//! The recurrent weights, read at every step, sit where the plan puts them: in each unit's registers
//! when a unit's share is small (its `G·H` of them, the loops unrolled), else copied once into the
//! cube's workgroup memory when they fit beside the state, else in global memory, where the reads
//! coalesce: the forward reads `W_hh` `[H, G·H]` along hidden units within each gate block, the
//! backward its transpose along hidden units. The launches are unchecked: the plan sizes every
//! index (see `ops`).
//! A small layer's forward projects each step's input itself (its `W_ih` in registers); a wider
//! layer's projection is a matrix product of whole sequences before the loop, done with Burn's own
//! operations. So are the parameter gradients after the backward for wide layers, while a small
//! layer's are summed by one more kernel ([`parameter_gradients`]), which keeps each unit's sums in
//! registers.
//!
//! Layouts (row-major, contiguous): projection and gate gradients `[batch, time, G·H]`; packed
//! output `[batch, time + S, H]` as [`FusedOutput::packed`](crate::FusedOutput::packed); residuals
//! `[batch, time, R]` with the LSTMs keeping `i, f, g, o, c, tanh c` (small layers leave `tanh c`
//! to their backward, which recomputes it) and the GRU `r, z, n` and `W_hn h + b_hn`. The cell is a
//! comptime code ([`LSTM`], [`PEEPHOLE_LSTM`], [`GRU`], [`RNN`]).

use cubecl::prelude::*;

/// Comptime code of `nn.LSTM`.
pub const LSTM: u32 = 0;
/// Comptime code of the peephole LSTM.
pub const PEEPHOLE_LSTM: u32 = 1;
/// Comptime code of `nn.GRU`.
pub const GRU: u32 = 2;
/// Comptime code of the tanh RNN.
pub const RNN: u32 = 3;

/// Gates of a cell code (4, 3 or 1), for comptime sizes.
pub fn gate_count(cell: u32) -> u32 {
    match cell {
        LSTM | PEEPHOLE_LSTM => 4,
        GRU => 3,
        _ => 1,
    }
}

/// Rows of the final state after the steps in the packed output: `h` and, for the LSTMs, `c`.
pub fn state_rows(cell: u32) -> usize {
    match cell {
        LSTM | PEEPHOLE_LSTM => 2,
        _ => 1,
    }
}

/// Residual values per step and sequence: the LSTMs' `i, f, g, o, c, tanh c`, the GRU's `r, z, n`
/// and `W_hn h + b_hn` (the RNN keeps none; the stride is unused there).
pub fn residual_width(cell: u32, hidden: u32) -> usize {
    match cell {
        GRU => 4 * hidden as usize,
        _ => 6 * hidden as usize,
    }
}

#[cube]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `tanh` from one `exp` of a non-positive argument: exact in its limits, no overflow.
#[cube]
fn tanh_of(x: f32) -> f32 {
    let e = (-2.0 * x.abs()).exp();
    let t = (1.0 - e) / (1.0 + e);
    select(x < 0.0, -t, t)
}

/// Copies the recurrent weights (`G·H · H` floats) into the cube's workgroup memory when `staged`,
/// every unit of the cube taking a share; the caller synchronizes before reading them.
#[cube]
fn stage_weights(global: &Tensor<f32>, staged: &mut SharedMemory<f32>, #[comptime] len: usize) {
    let mut i = UNIT_POS as usize;
    while i < len {
        staged[i] = global[i];
        i += CUBE_DIM as usize;
    }
}

/// Where a kernel reads the recurrent weights from (comptime; [`Call::weights`](super::plan::Call)).
pub const WEIGHTS_GLOBAL: u32 = 0;
/// Copied once per cube into workgroup memory.
pub const WEIGHTS_SHARED: u32 = 1;
/// Each unit's own `G·H` weights held in registers, the loops over them unrolled.
pub const WEIGHTS_OWN: u32 = 2;

/// Floats of the workgroup copy of the recurrent weights (all `G·H·H` when staged, else a placeholder).
fn staged_len(place: u32, cell: u32, hidden: u32) -> usize {
    match place {
        WEIGHTS_SHARED => (gate_count(cell) * hidden * hidden) as usize,
        _ => 1,
    }
}

/// Floats of a unit's own recurrent weights (its `G·H` when they sit in registers, else a placeholder).
fn own_len(place: u32, cell: u32, hidden: u32) -> usize {
    match place {
        WEIGHTS_OWN => (gate_count(cell) * hidden) as usize,
        _ => 1,
    }
}

/// A recurrent weight: element `i` of the global (or staged) weights, or element `j` of the unit's own.
#[cube]
fn weight(
    global: &Tensor<f32>,
    staged: &SharedMemory<f32>,
    own: &Array<f32>,
    i: usize,
    j: usize,
    #[comptime] place: u32,
) -> f32 {
    let mut w = own[0];
    if comptime![place == WEIGHTS_SHARED] {
        w = staged[i];
    } else if comptime![place == WEIGHTS_GLOBAL] {
        w = global[i];
    } else {
        w = own[j];
    }
    w
}

/// Floats of a unit's own input weights (its `G` columns' `I · G` when the forward projects the input
/// itself, else a placeholder).
fn projection_len(inputs: u32, cell: u32) -> usize {
    match inputs {
        0 => 1,
        _ => (inputs * gate_count(cell)) as usize,
    }
}

/// Forward through time of `sequences` sequences per cube.
///
/// `projection` holds `x W_ih` plus every bias that adds to it (for the GRU, all of `b_ih` and the
/// `r, z` parts of `b_hh`); `bias_hn` the GRU's `n` part of `b_hh`, which the reset gate multiplies.
/// With `inputs` (not 0; small layers whose recurrent weights sit in registers), `projection` is
/// the input itself `[batch, time, inputs]` (read through its strides, `N` features at a time;
/// otherwise `N` is 1), each unit keeping its columns of `weight_ih` and of the bias that adds to
/// the projection (`bias_ih` plus `bias_hh` but the GRU's `n` part, when `biased` says each is
/// given: bit 0 and bit 1) in registers and projecting every step as `x W_ih + bias`, without the
/// product and the sums launched before.
/// Tensors a cell does not read are passed with one element, as is the initial state when not
/// `initial`: the kernels then start from zeros without reading it (so do the other two kernels).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn recurrence_forward<N: Size>(
    projection: &Tensor<Vector<f32, N>>,
    weight_ih: &Tensor<f32>,
    bias_ih: &Tensor<f32>,
    bias_hh: &Tensor<f32>,
    weight_hh: &Tensor<f32>,
    bias_hn: &Tensor<f32>,
    peepholes: &Tensor<f32>,
    initial_hidden: &Tensor<f32>,
    initial_cell: &Tensor<f32>,
    packed: &mut Tensor<f32>,
    residuals: &mut Tensor<f32>,
    time: u32,
    batch: u32,
    #[comptime] cell: u32,
    #[comptime] hidden: u32,
    #[comptime] sequences: u32,
    #[comptime] keep_residuals: bool,
    #[comptime] place: u32,
    #[comptime] initial: bool,
    #[comptime] inputs: u32,
    #[comptime] biased: u32,
) {
    let s = UNIT_POS_Y as usize;
    let sequence = CUBE_POS_X as usize * comptime![sequences as usize] + s;
    let active = sequence < batch as usize;
    let b = select(active, sequence, batch as usize - 1);
    let threads = CUBE_DIM_X as usize;
    let unit = UNIT_POS_X as usize;
    let steps = time as usize;
    let h = comptime![hidden as usize];
    let gh = comptime![(gate_count(cell) * hidden) as usize];
    let rows = steps + comptime![state_rows(cell)];
    let width = comptime![residual_width(cell, hidden)];

    // The hidden state in two buffers, one read and the other written by each step, so that a step
    // needs one barrier; the cell state in a register where each unit owns one hidden unit
    // (`WEIGHTS_OWN`), else in workgroup memory, read and written by its own unit only.
    let own_cell = comptime![place == WEIGHTS_OWN];
    let mut cell_own = 0.0f32;
    let mut state = SharedMemory::<f32>::new(comptime![(sequences * 2 * hidden) as usize]);
    let mut cell_state = SharedMemory::<f32>::new(comptime![if place == WEIGHTS_OWN {
        1
    } else {
        (sequences * hidden) as usize
    }]);
    // The recurrent weights, copied once per cube when they fit beside the state (`Call::weights`):
    // every step reads all of them.
    let mut weights = SharedMemory::<f32>::new(comptime![staged_len(place, cell, hidden)]);
    if comptime![place == WEIGHTS_SHARED] {
        stage_weights(
            weight_hh,
            &mut weights,
            comptime![staged_len(place, cell, hidden)],
        );
    }
    // Or the unit's own columns in registers (the plan gives every hidden unit a unit of its own):
    // `own[k * G + gate]` is `W_hh[k, gate * H + unit]`.
    let gates = comptime![gate_count(cell) as usize];
    let mut own = Array::<f32>::new(comptime![own_len(place, cell, hidden)]);
    if comptime![place == WEIGHTS_OWN] {
        let column = select(unit < h, unit, 0);
        #[unroll]
        for k in 0..h {
            #[unroll]
            for g in 0..gates {
                own[k * gates + g] = weight_hh[k * gh + g * h + column];
            }
        }
    } else {
        own[0] = 0.0;
    }
    // And, projecting the input itself, the unit's columns of `W_ih` (`own_ih[i * G + gate]`) and
    // of the bias.
    let features = comptime![inputs as usize];
    let projects = comptime![inputs > 0];
    let mut own_ih = Array::<f32>::new(comptime![projection_len(inputs, cell)]);
    let mut own_bias = Array::<f32>::new(comptime![gate_count(cell) as usize]);
    #[unroll]
    for g in 0..gates {
        own_bias[g] = 0.0;
    }
    if comptime![projects] {
        let column = select(unit < h, unit, 0);
        #[unroll]
        for i in 0..features {
            #[unroll]
            for g in 0..gates {
                own_ih[i * gates + g] = weight_ih[i * gh + g * h + column];
            }
        }
        #[unroll]
        for g in 0..gates {
            if comptime![biased & 1 == 1] {
                own_bias[g] = bias_ih[g * h + column];
            }
            if comptime![biased & 2 == 2] {
                // The GRU's recurrent `n` bias sits inside the reset gate's product (`bias_hn`).
                let mut adds = true;
                if comptime![cell == GRU] {
                    adds = g != 2;
                }
                if adds {
                    own_bias[g] += bias_hh[g * h + column];
                }
            }
        }
    } else {
        own_ih[0] = 0.0;
    }
    let (s0, s1, s2) = (
        projection.stride(0),
        projection.stride(1),
        projection.stride(2),
    );
    let vector = projection.vector_size();
    let mut pre = Array::<f32>::new(comptime![gate_count(cell) as usize]);
    // This row's slices of the shared vectors.
    let s2h = s * 2 * h;
    let sh = s * h;

    let mut u = unit;
    while u < h {
        if comptime![initial] {
            state[s2h + u] = initial_hidden[b * h + u];
        } else {
            state[s2h + u] = 0.0;
        }
        if comptime![cell == LSTM || cell == PEEPHOLE_LSTM] {
            if comptime![initial] {
                cell_own = initial_cell[b * h + u];
            }
            if comptime![!own_cell] {
                cell_state[sh + u] = cell_own;
            }
        }
        u += threads;
    }
    sync_cube();

    for t in 0..steps {
        let read = s2h + (t % 2) * h;
        let write = s2h + ((t + 1) % 2) * h;
        let row = (b * steps + t) * gh;
        let out = (b * rows + t) * h;
        let res = (b * steps + t) * width;
        let mut u = unit;
        while u < h {
            // The step's input side of the unit's gates.
            if comptime![projects] {
                #[unroll]
                for g in 0..gates {
                    pre[g] = 0.0;
                }
                // Read `vector` features at a time when the input's layout allows (`N`).
                let x = (b * s0 + t * s1) / vector;
                #[unroll]
                for q in 0..comptime![features / vector] {
                    let values = projection[x + q * s2];
                    #[unroll]
                    for e in 0..vector {
                        let value = values[e];
                        let i = q * vector + e;
                        #[unroll]
                        for g in 0..gates {
                            pre[g] += value * own_ih[i * gates + g];
                        }
                    }
                }
                if comptime![biased > 0] {
                    #[unroll]
                    for g in 0..gates {
                        pre[g] += own_bias[g];
                    }
                }
            } else {
                #[unroll]
                for g in 0..gates {
                    pre[g] = projection[row + g * h + u][0];
                }
            }
            if comptime![cell == LSTM || cell == PEEPHOLE_LSTM] {
                // The unit's four gate columns of the recurrent product, each summed in k order.
                let mut a_i = 0.0f32;
                let mut a_f = 0.0f32;
                let mut a_g = 0.0f32;
                let mut a_o = 0.0f32;
                #[unroll(place == WEIGHTS_OWN)]
                for k in 0..h {
                    let x = state[read + k];
                    let w = k * gh + u;
                    let j = k * 4;
                    a_i += x * weight(weight_hh, &weights, &own, w, j, place);
                    a_f += x * weight(weight_hh, &weights, &own, w + h, j + 1, place);
                    a_g += x * weight(weight_hh, &weights, &own, w + 2 * h, j + 2, place);
                    a_o += x * weight(weight_hh, &weights, &own, w + 3 * h, j + 3, place);
                }
                let mut previous = cell_own;
                if comptime![!own_cell] {
                    previous = cell_state[sh + u];
                }
                let mut input_pre = pre[0] + a_i;
                let mut forget_pre = pre[1] + a_f;
                if comptime![cell == PEEPHOLE_LSTM] {
                    input_pre += previous * peepholes[u];
                    forget_pre += previous * peepholes[h + u];
                }
                let i = sigmoid(input_pre);
                let f = sigmoid(forget_pre);
                let g = tanh_of(pre[2] + a_g);
                let c = f * previous + i * g;
                let mut output_pre = pre[3] + a_o;
                if comptime![cell == PEEPHOLE_LSTM] {
                    output_pre += c * peepholes[2 * h + u];
                }
                let o = sigmoid(output_pre);
                let tanh_c = tanh_of(c);
                let next = o * tanh_c;
                if comptime![own_cell] {
                    cell_own = c;
                } else {
                    cell_state[sh + u] = c;
                }
                state[write + u] = next;
                if active {
                    packed[out + u] = next;
                }
                if keep_residuals && active {
                    residuals[res + u] = i;
                    residuals[res + h + u] = f;
                    residuals[res + 2 * h + u] = g;
                    residuals[res + 3 * h + u] = o;
                    residuals[res + 4 * h + u] = c;
                    // Small layers' backward recomputes `tanh c` ([`recurrence_backward_own`]).
                    if comptime![!own_cell] {
                        residuals[res + 5 * h + u] = tanh_c;
                    }
                }
            } else if comptime![cell == GRU] {
                let mut a_r = 0.0f32;
                let mut a_z = 0.0f32;
                let mut a_n = 0.0f32;
                #[unroll(place == WEIGHTS_OWN)]
                for k in 0..h {
                    let x = state[read + k];
                    let w = k * gh + u;
                    let j = k * 3;
                    a_r += x * weight(weight_hh, &weights, &own, w, j, place);
                    a_z += x * weight(weight_hh, &weights, &own, w + h, j + 1, place);
                    a_n += x * weight(weight_hh, &weights, &own, w + 2 * h, j + 2, place);
                }
                let r = sigmoid(pre[0] + a_r);
                let z = sigmoid(pre[1] + a_z);
                let hn = a_n + bias_hn[u];
                let n = tanh_of(pre[2] + r * hn);
                let next = (1.0 - z) * n + z * state[read + u];
                state[write + u] = next;
                if active {
                    packed[out + u] = next;
                }
                if keep_residuals && active {
                    residuals[res + u] = r;
                    residuals[res + h + u] = z;
                    residuals[res + 2 * h + u] = n;
                    residuals[res + 3 * h + u] = hn;
                }
            } else {
                let mut acc = 0.0f32;
                #[unroll(place == WEIGHTS_OWN)]
                for k in 0..h {
                    acc +=
                        state[read + k] * weight(weight_hh, &weights, &own, k * gh + u, k, place);
                }
                let next = tanh_of(pre[0] + acc);
                state[write + u] = next;
                if active {
                    packed[out + u] = next;
                }
            }
            u += threads;
        }
        sync_cube();
    }

    let last = (b * rows + steps) * h;
    let final_state = s2h + (steps % 2) * h;
    let mut u = unit;
    while u < h && active {
        packed[last + u] = state[final_state + u];
        if comptime![cell == LSTM || cell == PEEPHOLE_LSTM] {
            let mut c = cell_own;
            if comptime![!own_cell] {
                c = cell_state[sh + u];
            }
            packed[last + h + u] = c;
        }
        u += threads;
    }
}

/// The value a step of hidden unit `u` started from: `source[at]` after the first step, the initial
/// state's `initial_values[first]` at the first when given (`initial`), else 0.
#[cube]
fn previous_value(
    source: &Tensor<f32>,
    initial_values: &Tensor<f32>,
    at: usize,
    first: usize,
    t: usize,
    #[comptime] initial: bool,
) -> f32 {
    let mut previous = 0.0f32;
    if comptime![initial] {
        previous = initial_values[first];
    }
    if t > 0 {
        previous = source[at];
    }
    previous
}

/// The first `count` gate activations of hidden unit `u` in the residuals' row `res` (`a[k]` at
/// `res + k·H + u`).
#[cube]
fn activations(
    residuals: &Tensor<f32>,
    res: usize,
    u: usize,
    a: &mut Array<f32>,
    #[comptime] hidden: u32,
    #[comptime] count: u32,
) {
    #[unroll]
    for k in 0..comptime![count as usize] {
        a[k] = residuals[res + k * comptime![hidden as usize] + u];
    }
}

/// An LSTM unit's gate gradients for one step, `[d_input, d_forget, d_candidate, d_output]` into
/// `d`, from dL/dh_t (`dh`), dL/dc_t carried from the step after (`dc_after`), the step's activations
/// `a` (`i, f, g, o`), `tanh c_t` and `c_{t-1}` (`previous`); returns dL/dc_{t-1}.
#[cube]
#[allow(clippy::too_many_arguments)]
fn lstm_gradients(
    dh: f32,
    dc_after: f32,
    a: &Array<f32>,
    tanh_c: f32,
    previous: f32,
    peepholes: &Tensor<f32>,
    u: usize,
    d: &mut Array<f32>,
    #[comptime] cell: u32,
    #[comptime] hidden: u32,
) -> f32 {
    let h = comptime![hidden as usize];
    let (i, f, g, o) = (a[0], a[1], a[2], a[3]);
    let d_output = dh * tanh_c * o * (1.0 - o);
    let mut dc = dc_after + dh * o * (1.0 - tanh_c * tanh_c);
    if comptime![cell == PEEPHOLE_LSTM] {
        dc += d_output * peepholes[2 * h + u];
    }
    let d_input = dc * g * i * (1.0 - i);
    let d_forget = dc * previous * f * (1.0 - f);
    let mut dc_previous = dc * f;
    if comptime![cell == PEEPHOLE_LSTM] {
        dc_previous += d_input * peepholes[u] + d_forget * peepholes[h + u];
    }
    d[0] = d_input;
    d[1] = d_forget;
    d[2] = dc * i * (1.0 - g * g);
    d[3] = d_output;
    dc_previous
}

/// A GRU unit's gate gradients for one step, `[d_reset, d_update, d_new]` into `d` (`d_new` on the
/// input side, of `x W_in + b_in`), from dL/dh_t, the step's activations `a` (`r, z, n` and
/// `W_hn h + b_hn`) and `h_{t-1}`.
#[cube]
fn gru_gradients(dh: f32, a: &Array<f32>, previous: f32, d: &mut Array<f32>) {
    let (r, z, n, hn) = (a[0], a[1], a[2], a[3]);
    let d_new = dh * (1.0 - z) * (1.0 - n * n);
    d[0] = d_new * hn * r * (1.0 - r);
    d[1] = dh * (previous - n) * z * (1.0 - z);
    d[2] = d_new;
}

/// Backward through time of `sequences` sequences per cube, from `grad`, the gradient of the packed output.
///
/// Writes the gradient of every step's gate pre-activations `[batch, time, G·H]` (on the input side:
/// for the GRU's `n` gate, of `x W_in + b_in`), for the GRU the gradient of `W_hn h + b_hn`
/// `[batch, time, H]` in `grad_hidden_n`, and the gradients of the initial hidden and cell states in
/// `grad_initial` `[batch, 2, H]`. `weight_hh_t` is `W_hh` transposed, `[G·H, H]`, staged in workgroup
/// memory or read from global memory (`place`); small layers run [`recurrence_backward_own`].
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn recurrence_backward(
    packed: &Tensor<f32>,
    residuals: &Tensor<f32>,
    grad: &Tensor<f32>,
    weight_hh_t: &Tensor<f32>,
    peepholes: &Tensor<f32>,
    initial_hidden: &Tensor<f32>,
    initial_cell: &Tensor<f32>,
    grad_gates: &mut Tensor<f32>,
    grad_hidden_n: &mut Tensor<f32>,
    grad_initial: &mut Tensor<f32>,
    time: u32,
    batch: u32,
    #[comptime] cell: u32,
    #[comptime] hidden: u32,
    #[comptime] sequences: u32,
    #[comptime] place: u32,
    #[comptime] initial: bool,
    #[comptime] double: bool,
) {
    let s = UNIT_POS_Y as usize;
    let sequence = CUBE_POS_X as usize * comptime![sequences as usize] + s;
    let active = sequence < batch as usize;
    let b = select(active, sequence, batch as usize - 1);
    let threads = CUBE_DIM_X as usize;
    let unit = UNIT_POS_X as usize;
    let steps = time as usize;
    let h = comptime![hidden as usize];
    let gh = comptime![(gate_count(cell) * hidden) as usize];
    let rows = steps + comptime![state_rows(cell)];
    let width = comptime![residual_width(cell, hidden)];

    // The transposed recurrent weights, copied once per cube when they fit (`Call::weights`).
    let mut weights = SharedMemory::<f32>::new(comptime![staged_len(place, cell, hidden)]);
    if comptime![place == WEIGHTS_SHARED] {
        stage_weights(
            weight_hh_t,
            &mut weights,
            comptime![staged_len(place, cell, hidden)],
        );
    }
    // (Small layers, whose weights sit in registers, run [`recurrence_backward_own`].)
    let mut own = Array::<f32>::new(1usize);
    own[0] = 0.0;

    // carry: dL/dh_t through the recurrent weights (and the GRU's direct path); grad_cell: dL/dc_t;
    // grad_recurrent: the gate gradients as the recurrent product sees them.
    let mut carry = SharedMemory::<f32>::new(comptime![(sequences * hidden) as usize]);
    let mut grad_cell = SharedMemory::<f32>::new(comptime![(sequences * hidden) as usize]);
    let mut direct = SharedMemory::<f32>::new(comptime![(sequences * hidden) as usize]);
    // grad_recurrent in two buffers when `double` (one read and the other written by each step, so
    // that a step needs one barrier, as forward), else in one, with a second barrier.
    let buffers = comptime![if double { 2u32 } else { 1u32 }];
    let mut grad_recurrent = SharedMemory::<f32>::new(comptime![
        (sequences * buffers * gate_count(cell) * hidden) as usize
    ]);
    let sh = s * h;
    let sequence_gates = s * comptime![buffers as usize] * gh;
    let gates = comptime![gate_count(cell) as usize];
    // A step's activations (residuals) and gate gradients, of the unit's hidden unit.
    let mut a = Array::<f32>::new(4usize);
    let mut d = Array::<f32>::new(comptime![gate_count(cell) as usize]);

    let final_row = (b * rows + steps) * h;
    let mut u = unit;
    while u < h {
        carry[sh + u] = grad[final_row + u];
        if comptime![cell == LSTM || cell == PEEPHOLE_LSTM] {
            grad_cell[sh + u] = grad[final_row + h + u];
        }
        direct[sh + u] = 0.0;
        u += threads;
    }
    sync_cube();

    for step in 0..steps {
        let t = steps - 1 - step;
        let out = (b * rows + t) * h;
        let res = (b * steps + t) * width;
        let gates_row = (b * steps + t) * gh;
        let mut sg = sequence_gates;
        if comptime![double] {
            sg += (step % 2) * gh;
        }
        let mut u = unit;
        while u < h {
            let dh = grad[out + u] + carry[sh + u];
            if comptime![cell == LSTM || cell == PEEPHOLE_LSTM] {
                activations(residuals, res, u, &mut a, hidden, 4u32);
                let tanh_c = residuals[res + 5 * h + u];
                let previous = previous_value(
                    residuals,
                    initial_cell,
                    res - width + 4 * h + u,
                    b * h + u,
                    t,
                    initial,
                );
                grad_cell[sh + u] = lstm_gradients(
                    dh,
                    grad_cell[sh + u],
                    &a,
                    tanh_c,
                    previous,
                    peepholes,
                    u,
                    &mut d,
                    cell,
                    hidden,
                );
            } else if comptime![cell == GRU] {
                activations(residuals, res, u, &mut a, hidden, 4u32);
                let previous =
                    previous_value(packed, initial_hidden, out - h + u, b * h + u, t, initial);
                gru_gradients(dh, &a, previous, &mut d);
                direct[sh + u] = dh * a[1];
            } else {
                let next = packed[out + u];
                d[0] = dh * (1.0 - next * next);
            }
            if active {
                #[unroll]
                for k in 0..gates {
                    grad_gates[gates_row + k * h + u] = d[k];
                }
            }
            // From here `d` is the gate gradients as the recurrent product sees them: for the GRU's
            // `n` gate, of `W_hn h + b_hn`.
            if comptime![cell == GRU] {
                d[2] *= a[0];
                if active {
                    grad_hidden_n[(b * steps + t) * h + u] = d[2];
                }
            }
            #[unroll]
            for k in 0..gates {
                grad_recurrent[sg + k * h + u] = d[k];
            }
            u += threads;
        }
        sync_cube();

        let mut k = unit;
        while k < h {
            let mut acc = direct[sh + k];
            #[unroll(place == WEIGHTS_OWN)]
            for j in 0..gh {
                acc += grad_recurrent[sg + j]
                    * weight(weight_hh_t, &weights, &own, j * h + k, j, place);
            }
            carry[sh + k] = acc;
            k += threads;
        }
        if comptime![!double] {
            sync_cube();
        }
    }

    let mut u = unit;
    while u < h && active {
        grad_initial[b * 2 * h + u] = carry[sh + u];
        if comptime![cell == LSTM || cell == PEEPHOLE_LSTM] {
            grad_initial[b * 2 * h + h + u] = grad_cell[sh + u];
        }
        u += threads;
    }
}

/// Floats one sequence exchanges per step in [`recurrence_backward_own`]: each unit's contribution to
/// every hidden unit's carry (`H·H`) for the gated cells, the `H` gate gradients themselves for the
/// tanh RNN, whose gate gradients are fewer.
pub fn exchange_len(cell: u32, hidden: u32) -> usize {
    match gate_count(cell) {
        1 => hidden as usize,
        _ => (hidden * hidden) as usize,
    }
}

/// Backward through time for small layers ([`WEIGHTS_OWN`]: a unit per hidden unit), `sequences` per
/// cube: each unit keeps its hidden unit's carried gradients in registers and its `W_hh` weights too,
/// and a step's carry to the step before crosses the units through workgroup memory in two buffers
/// (one barrier a step). For the gated cells a unit writes its contribution to every hidden unit's
/// carry (`H` partial sums) and reads the `H` contributions to its own, `2H` accesses a step instead of
/// the `G·H + G` of exchanging the gate gradients; the tanh RNN exchanges its `H` gate gradients.
/// Every workgroup-memory access costs a pass over the SIMD lanes on lavapipe, the count matters.
/// The carry sums its contributions unit by unit, each over the gates in order. Outputs and layouts
/// as [`recurrence_backward`], whose `weight_hh_t` is passed untransposed here; the residual `tanh c`
/// is recomputed from `c`, as the forward computed it.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn recurrence_backward_own(
    packed: &Tensor<f32>,
    residuals: &Tensor<f32>,
    grad: &Tensor<f32>,
    weight_hh: &Tensor<f32>,
    peepholes: &Tensor<f32>,
    initial_hidden: &Tensor<f32>,
    initial_cell: &Tensor<f32>,
    grad_gates: &mut Tensor<f32>,
    grad_hidden_n: &mut Tensor<f32>,
    grad_initial: &mut Tensor<f32>,
    time: u32,
    batch: u32,
    #[comptime] cell: u32,
    #[comptime] hidden: u32,
    #[comptime] sequences: u32,
    #[comptime] initial: bool,
) {
    let s = UNIT_POS_Y as usize;
    let sequence = CUBE_POS_X as usize * comptime![sequences as usize] + s;
    let active = sequence < batch as usize;
    let b = select(active, sequence, batch as usize - 1);
    let unit = UNIT_POS_X as usize;
    let steps = time as usize;
    let h = comptime![hidden as usize];
    let gates = comptime![gate_count(cell) as usize];
    let gh = comptime![(gate_count(cell) * hidden) as usize];
    let rows = steps + comptime![state_rows(cell)];
    let width = comptime![residual_width(cell, hidden)];
    let lstm = comptime![cell == LSTM || cell == PEEPHOLE_LSTM];
    let transposed = comptime![gate_count(cell) > 1];
    // Units past the hidden size compute on hidden unit 0's values and write nothing.
    let owner = unit < h;
    let u = select(owner, unit, 0);
    let writes = active && owner;

    // The gated cells: the unit's gate columns of `W_hh`, `own[g * H + k] = W_hh[k, g·H + u]`, its
    // share of every carry; the RNN: its row, `own[j] = W_hh[u, j]`, which its own carry reads.
    let mut own = Array::<f32>::new(comptime![(gate_count(cell) * hidden) as usize]);
    if comptime![transposed] {
        #[unroll]
        for g in 0..gates {
            #[unroll]
            for k in 0..h {
                own[g * h + k] = weight_hh[k * gh + g * h + u];
            }
        }
    } else {
        #[unroll]
        for j in 0..h {
            own[j] = weight_hh[u * gh + j];
        }
    }
    let per = comptime![exchange_len(cell, hidden)];
    let mut exchange = SharedMemory::<f32>::new(comptime![
        sequences as usize * 2 * exchange_len(cell, hidden)
    ]);
    let base = s * 2 * per;

    // carry: dL/dh_t through the recurrent weights and the GRU's direct path; grad_cell: dL/dc_t;
    // cell_next: c_t, read as the step after's previous cell state.
    let final_row = (b * rows + steps) * h;
    let mut carry = grad[final_row + u];
    let mut grad_cell = 0.0f32;
    let mut cell_next = 0.0f32;
    if comptime![lstm] {
        grad_cell = grad[final_row + h + u];
        cell_next = residuals[((b * steps + steps - 1) * width) + 4 * h + u];
    }
    // A step's activations (residuals) and gate gradients, of the unit's hidden unit.
    let mut a = Array::<f32>::new(4usize);
    let mut d = Array::<f32>::new(comptime![gate_count(cell) as usize]);

    for step in 0..steps {
        let t = steps - 1 - step;
        let out = (b * rows + t) * h;
        let res = (b * steps + t) * width;
        let gates_row = (b * steps + t) * gh;
        let buffer = base + (step % 2) * per;
        let dh = grad[out + u] + carry;
        let mut direct = 0.0f32;
        if comptime![lstm] {
            activations(residuals, res, u, &mut a, hidden, 4u32);
            let previous = previous_value(
                residuals,
                initial_cell,
                res - width + 4 * h + u,
                b * h + u,
                t,
                initial,
            );
            grad_cell = lstm_gradients(
                dh,
                grad_cell,
                &a,
                tanh_of(cell_next),
                previous,
                peepholes,
                u,
                &mut d,
                cell,
                hidden,
            );
            cell_next = previous;
        } else if comptime![cell == GRU] {
            activations(residuals, res, u, &mut a, hidden, 4u32);
            let previous =
                previous_value(packed, initial_hidden, out - h + u, b * h + u, t, initial);
            gru_gradients(dh, &a, previous, &mut d);
            direct = dh * a[1];
        } else {
            let next = packed[out + u];
            d[0] = dh * (1.0 - next * next);
        }
        if writes {
            #[unroll]
            for k in 0..gates {
                grad_gates[gates_row + k * h + u] = d[k];
            }
        }
        // From here `d` is the gate gradients as the recurrent product sees them: for the GRU's `n`
        // gate, of `W_hn h + b_hn`.
        if comptime![cell == GRU] {
            d[2] *= a[0];
            if writes {
                grad_hidden_n[(b * steps + t) * h + u] = d[2];
            }
        }

        if comptime![transposed] {
            if owner {
                #[unroll]
                for k in 0..h {
                    let mut share = 0.0f32;
                    #[unroll]
                    for g in 0..gates {
                        share += d[g] * own[g * h + k];
                    }
                    exchange[buffer + k * h + u] = share;
                }
            }
        } else if owner {
            exchange[buffer + u] = d[0];
        }
        sync_cube();

        let mut acc = direct;
        if comptime![transposed] {
            #[unroll]
            for v in 0..h {
                acc += exchange[buffer + u * h + v];
            }
        } else {
            #[unroll]
            for j in 0..h {
                acc += exchange[buffer + j] * own[j];
            }
        }
        carry = acc;
    }

    if writes {
        grad_initial[b * 2 * h + u] = carry;
        if comptime![lstm] {
            grad_initial[b * 2 * h + h + u] = grad_cell;
        }
    }
}

/// Rows of the parameter gradients per gate column: `I` of `W_ih`, `H` of `W_hh`, then the input
/// and the recurrent bias (the same sum but for the GRU's `n` gate, whose recurrent bias sits inside
/// the reset gate's product).
pub fn parameter_rows(inputs: u32, hidden: u32) -> usize {
    (inputs + hidden + 2) as usize
}

/// The parameter gradients of a small layer, summed over `chunk` sequences per cube: the products
/// Burn would otherwise launch one by one, each a long sum over all `batch · time` rows into few
/// outputs.
///
/// A unit owns `span` neighbouring gate columns and keeps all `I + H + 2` sums of each in registers
/// (the loops over them unrolled), so that each step's input and hidden values, read once, serve
/// `span` columns. Cube `c` writes `partials[c, p, j]`, rows `p` as in [`parameter_rows`]: `W_ih`
/// from the input (read through its strides: the previous layer's output is a view), `W_hh` from the
/// hidden state each step started from (`initial_hidden`, then the packed output), then the two
/// biases. Summed sequence by sequence, step by step; the input read `N` features at a time.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn parameter_gradients<N: Size>(
    input: &Tensor<Vector<f32, N>>,
    packed: &Tensor<f32>,
    initial_hidden: &Tensor<f32>,
    grad_gates: &Tensor<f32>,
    grad_hidden_n: &Tensor<f32>,
    partials: &mut Tensor<f32>,
    time: u32,
    batch: u32,
    chunk: u32,
    #[comptime] cell: u32,
    #[comptime] hidden: u32,
    #[comptime] inputs: u32,
    #[comptime] span: u32,
    #[comptime] initial: bool,
) {
    let h = comptime![hidden as usize];
    let features = comptime![inputs as usize];
    let gh = comptime![(gate_count(cell) * hidden) as usize];
    let parameters = comptime![parameter_rows(inputs, hidden)];
    let columns = comptime![span as usize];
    let steps = time as usize;
    let rows = steps + comptime![state_rows(cell)];
    let first_column = UNIT_POS_X as usize * columns;

    // Each column's index (past the last, the last one's: computed, never written) and, for the
    // GRU's `n` gate, its index in the gradient of `W_hn h + b_hn`, which the recurrent rows see
    // (0 for the other columns, whose read of it `select` discards, so that it stays in bounds).
    let mut column = Array::<usize>::new(columns);
    let mut from_n = Array::<bool>::new(columns);
    let mut n = Array::<usize>::new(columns);
    #[unroll]
    for q in 0..columns {
        let j = select(first_column + q < gh, first_column + q, gh - 1);
        column[q] = j;
        from_n[q] = comptime![cell == GRU] && j >= 2 * h;
        n[q] = select(from_n[q], j - select(from_n[q], 2 * h, 0), 0);
    }
    let (s0, s1, s2) = (input.stride(0), input.stride(1), input.stride(2));
    let vector = input.vector_size();

    // `acc[p * span + q]`: row `p` of column `q`.
    let mut acc = Array::<f32>::new(comptime![parameter_rows(inputs, hidden) * span as usize]);
    #[unroll]
    for p in 0..parameters * columns {
        acc[p] = 0.0;
    }
    let mut d = Array::<f32>::new(columns);
    let mut recurrent = Array::<f32>::new(columns);
    let first = CUBE_POS_X as usize * chunk as usize;
    let end = batch as usize;
    let last = select(first + (chunk as usize) < end, first + chunk as usize, end);
    for b in first..last {
        for t in 0..steps {
            let r = b * steps + t;
            #[unroll]
            for q in 0..columns {
                d[q] = grad_gates[r * gh + column[q]];
                recurrent[q] = d[q];
                if comptime![cell == GRU] {
                    recurrent[q] = select(from_n[q], grad_hidden_n[r * h + n[q]], d[q]);
                }
            }
            let x = (b * s0 + t * s1) / vector;
            #[unroll]
            for v in 0..comptime![features / vector] {
                let values = input[x + v * s2];
                #[unroll]
                for e in 0..vector {
                    let a = values[e];
                    let i = v * vector + e;
                    #[unroll]
                    for q in 0..columns {
                        acc[i * columns + q] += a * d[q];
                    }
                }
            }
            let mut previous = 0.0f32;
            #[unroll]
            for k in 0..h {
                if t == 0 {
                    if comptime![initial] {
                        previous = initial_hidden[b * h + k];
                    }
                } else {
                    previous = packed[(b * rows + t - 1) * h + k];
                }
                #[unroll]
                for q in 0..columns {
                    acc[(features + k) * columns + q] += previous * recurrent[q];
                }
            }
            #[unroll]
            for q in 0..columns {
                acc[(features + h) * columns + q] += d[q];
                acc[(features + h + 1) * columns + q] += recurrent[q];
            }
        }
    }
    let out = CUBE_POS_X as usize * parameters * gh;
    #[unroll]
    for q in 0..columns {
        if first_column + q < gh {
            #[unroll]
            for p in 0..parameters {
                partials[out + p * gh + first_column + q] = acc[p * columns + q];
            }
        }
    }
}
