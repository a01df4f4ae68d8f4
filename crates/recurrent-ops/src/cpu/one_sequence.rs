//! The forward pass of one sequence alone (a batch of one: a word transcribed), each LSTM step
//! shared by two threads, each owning half of the hidden units.
//!
//! A step of one sequence is a `[1, H] × [H, 4H]` product that reads all of `W_hh` for one
//! multiply-add per weight: at H = 256 that is 1 MiB a step, a core's whole L2 cache, so one core
//! reads it from L3 every step. Split by hidden units (columns `g·H + u` of every gate `g` for the
//! units `u` of a half), each thread computes its units' input projection for every step, copies its
//! half of `W_hh` into a contiguous buffer once a call, which then stays in its own L2 from step to
//! step, and computes its half of each new state; the threads meet once a step, because the next
//! product reads the whole state. Every element is
//! computed by the same operations as in [`forward`](super::forward) (a product's chains do not
//! depend on which columns are computed together; the element-wise functions act per element): the
//! bits are the same.
//!
//! The second thread is [`helper`](super::helper)'s, which may come late or not at all: the caller's
//! thread then also takes the second half's projection and each half-step it finds unclaimed
//! (reading those weights where they lie), so the pass never waits on a thread that is not running.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::forward::lstm_gates;
use super::gemm::matmul_few_columns_strided;
use super::helper::{wait_until, with_help};
use super::step_product::{small_matmul, small_matmul_strided};
use super::{Dims, Initial, Params};
use crate::Cell;

/// Hidden units below which a step is too small to share (a few microseconds of work against the
/// threads' meeting).
const MIN_HIDDEN: usize = 128;
/// Steps below which copying the halves of `W_hh` does not pay; above the most, the input
/// projection of every step would be held at once (1 MiB at H = 256).
const STEPS: Range<usize> = 8..257;

thread_local! {
    /// This thread's half of `W_hh`, contiguous: reused from call to call.
    static HALF_WEIGHTS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether a forward pass of `dims` whose one sequence runs `length` steps runs here: an LSTM at
/// inference (no residuals kept), H large enough, and a second thread allowed (rayon's pool, which
/// `RAYON_NUM_THREADS` sizes, has one).
pub fn applies(dims: &Dims, cell: Cell, keep_residuals: bool, length: usize) -> bool {
    dims.batch == 1
        && !keep_residuals
        && matches!(cell, Cell::Lstm | Cell::PeepholeLstm)
        && dims.hidden >= MIN_HIDDEN
        && STEPS.contains(&length)
        && rayon::current_num_threads() >= 2
}

/// Runs the first `length` steps of the one sequence `x` (`[time, in]`) from `initial`, writing
/// `packed` (`[time + 2, H]` with `outputs`, else `[2, H]`) as [`forward`](super::forward) does;
/// `final_at` is where the final state starts in it, `bias` the folded bias. Offers each step's second
/// half to the helper thread when `help`, which changes no bit.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    dims: &Dims,
    params: &Params<'_>,
    bias: Option<&[f32]>,
    x: &[f32],
    initial: Initial<'_>,
    length: usize,
    outputs: bool,
    final_at: usize,
    packed: &mut [f32],
    help: bool,
) {
    let (h, input) = (dims.hidden, dims.input);
    // Step t reads the hidden state from buffer (t + 1) % 2 and writes buffer t % 2.
    let mut hidden = [vec![0.0f32; h], vec![0.0f32; h]];
    let mut cell = vec![0.0f32; h];
    if let Some(h0) = initial.hidden {
        hidden[1].copy_from_slice(&h0[..h]);
    }
    if let Some(c0) = initial.cell {
        cell.copy_from_slice(&c0[..h]);
    }
    let split = (h / 2).next_multiple_of(16).min(h);
    // Each half's input projection, `[steps, 4 · units]` (the units of gate 0, then 1, 2, 3).
    let mut projections = [
        vec![0.0f32; length * 4 * split],
        vec![0.0f32; length * 4 * (h - split)],
    ];
    let [hidden_0, hidden_1] = &mut hidden;
    let [projection_0, projection_1] = &mut projections;
    let shared = Shared {
        params,
        h,
        input,
        x,
        bias,
        steps: length,
        projections: [projection_0.as_mut_ptr(), projection_1.as_mut_ptr()],
        hidden: [hidden_0.as_mut_ptr(), hidden_1.as_mut_ptr()],
        cell: cell.as_mut_ptr(),
        outputs: if outputs {
            packed.as_mut_ptr()
        } else {
            std::ptr::null_mut()
        },
        has_h0: initial.hidden.is_some(),
        has_c0: initial.cell.is_some(),
        halves: [0..split, split..h],
        next_second: AtomicUsize::new(0),
        done: [AtomicUsize::new(0), AtomicUsize::new(0)],
        abandoned: AtomicBool::new(false),
    };
    if help {
        with_help(|| shared.lead(), &|| shared.help());
    } else {
        shared.lead();
    }
    packed[final_at..][..h].copy_from_slice(&hidden[(length - 1) % 2]);
    packed[final_at + h..][..h].copy_from_slice(&cell);
}

/// The state of one pass, shared by the two threads.
struct Shared<'a> {
    params: &'a Params<'a>,
    h: usize,
    input: usize,
    /// The sequence, `[time, in]`.
    x: &'a [f32],
    /// The folded bias, `[4H]`.
    bias: Option<&'a [f32]>,
    steps: usize,
    /// Each half's input projection with the bias, `[steps, 4 · units]`.
    projections: [*mut f32; 2],
    /// The two hidden-state buffers, `[H]` each.
    hidden: [*mut f32; 2],
    /// The cell state, `[H]`.
    cell: *mut f32,
    /// The sequence's outputs, `[time, H]`, or null when only the final state is asked for.
    outputs: *mut f32,
    has_h0: bool,
    has_c0: bool,
    /// The units of each half.
    halves: [Range<usize>; 2],
    /// The second half's work comes in items: 0 its input projection, s + 1 its part of step s.
    /// The first item no thread has taken.
    next_second: AtomicUsize,
    /// Steps whose first half is complete; items of the second half complete.
    done: [AtomicUsize; 2],
    /// Set when the caller's thread unwinds (a panic): the helper stops waiting for it.
    abandoned: AtomicBool,
}

// SAFETY: the pointers are used by the caller's thread and the helper, which write disjoint units
// of each buffer and order every read after the writes it depends on through `done` (release
// stores, acquire loads); see `lead`, `help` and `half_step`.
unsafe impl Sync for Shared<'_> {}

impl Shared<'_> {
    /// The caller's thread: the first half's projection and steps, and each item of the second
    /// half it finds unclaimed after its own work (those weights read where they lie).
    fn lead(&self) {
        struct Abandon<'a>(&'a AtomicBool);
        impl Drop for Abandon<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.store(true, Ordering::Release);
                }
            }
        }
        let _abandon = Abandon(&self.abandoned);
        self.project(0);
        if self.claim_second(0) {
            self.project(1);
            self.done[1].store(1, Ordering::Release);
        }
        HALF_WEIGHTS.with_borrow_mut(|weights| {
            self.copy_half(0, weights);
            let mut scratch = vec![0.0f32; 5 * self.h];
            for s in 0..self.steps {
                // Step s reads the state that both halves of step s - 1 wrote (for s = 0, item 0
                // of the second half: its projection, which the second half's steps read).
                wait_until(|| self.done[1].load(Ordering::Acquire) > s);
                self.half_step(0, s, Some(weights), &mut scratch);
                self.done[0].store(s + 1, Ordering::Release);
                if self.claim_second(s + 1) {
                    self.half_step(1, s, None, &mut scratch);
                    self.done[1].store(s + 2, Ordering::Release);
                }
            }
            wait_until(|| self.done[1].load(Ordering::Acquire) > self.steps);
        });
    }

    /// The helper: each item of the second half as soon as what it reads is complete, unless the
    /// caller's thread has taken it.
    fn help(&self) {
        if self.next_second.load(Ordering::Acquire) > self.steps {
            return;
        }
        HALF_WEIGHTS.with_borrow_mut(|weights| {
            let mut scratch = vec![0.0f32; 5 * self.h];
            let mut copied = false;
            loop {
                let item = self.next_second.load(Ordering::Acquire);
                if item > self.steps {
                    return;
                }
                if item == 0 {
                    if self.claim_second(0) {
                        self.project(1);
                        self.done[1].store(1, Ordering::Release);
                    }
                    continue;
                }
                if !copied {
                    self.copy_half(1, weights);
                    copied = true;
                }
                // Item s + 1 is step s, which reads step s - 1 (and the projection, item 0).
                let s = item - 1;
                wait_until(|| {
                    self.abandoned.load(Ordering::Acquire)
                        || (self.done[0].load(Ordering::Acquire) >= s
                            && self.done[1].load(Ordering::Acquire) >= item)
                });
                if self.abandoned.load(Ordering::Acquire) {
                    return;
                }
                if self.claim_second(item) {
                    self.half_step(1, s, Some(weights), &mut scratch);
                    self.done[1].store(item + 1, Ordering::Release);
                }
            }
        });
    }

    /// Takes item `item` of the second half if no thread has.
    fn claim_second(&self, item: usize) -> bool {
        self.next_second
            .compare_exchange(item, item + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Half `half`'s input projection with the bias: per gate, its units' columns of `W_ih`.
    fn project(&self, half: usize) {
        let (h, units) = (self.h, &self.halves[half]);
        let width = units.len();
        // SAFETY: each half's projection is written here once, by the one thread that took the
        // work (the caller's for the first half; item 0 for the second), before `done` publishes
        // it; it holds `steps` rows of 4 · width values.
        let projection = unsafe {
            std::slice::from_raw_parts_mut(self.projections[half], self.steps * 4 * width)
        };
        for g in 0..4 {
            let columns = g * h + units.start;
            matmul_few_columns_strided(
                &self.params.weight_ih[columns..],
                4 * h,
                self.input,
                width,
                self.x,
                self.input,
                self.steps,
                &mut projection[g * width..],
                4 * width,
            );
        }
        if let Some(bias) = self.bias {
            for row in projection.chunks_exact_mut(4 * width) {
                for (g, gate) in row.chunks_exact_mut(width).enumerate() {
                    for (v, b) in gate.iter_mut().zip(&bias[g * h + units.start..]) {
                        *v += b;
                    }
                }
            }
        }
    }

    /// `W_hh`'s columns of half `half`, `[H, 4 · units]`: each row the units of gate 0, then 1, 2, 3.
    fn copy_half(&self, half: usize, weights: &mut Vec<f32>) {
        let (h, units) = (self.h, &self.halves[half]);
        let width = units.len();
        weights.clear();
        weights.reserve(h * 4 * width);
        for row in self.params.weight_hh.chunks_exact(4 * h) {
            for g in 0..4 {
                weights.extend_from_slice(&row[g * h + units.start..][..width]);
            }
        }
    }

    /// Half `half` of step `s`: its units' gates, cell and hidden state. `weights` is the half's
    /// copy of `W_hh` (see [`Shared::copy_half`]), or `None` to read `W_hh` where it lies.
    ///
    /// Step s reads hidden buffer (s + 1) % 2, which no thread writes while step s runs: step s + 1
    /// writes it, and each half of step s + 1 starts after both halves of step s are done (`lead`
    /// waits for `done[1] > s`, `help` for both counters). It writes its half's units of buffer
    /// s % 2, of the cell state and of the outputs, which only this half touches, step by step.
    fn half_step(&self, half: usize, s: usize, weights: Option<&[f32]>, scratch: &mut [f32]) {
        let (h, units) = (self.h, self.halves[half].clone());
        let width = units.len();
        // SAFETY: no other thread writes what this half reads or this half writes while it runs
        // (the order above); the buffers hold H values, the outputs `steps` rows of H.
        let (previous, hidden, cell, output) = unsafe {
            (
                std::slice::from_raw_parts(self.hidden[(s + 1) % 2], h),
                std::slice::from_raw_parts_mut(self.hidden[s % 2].add(units.start), width),
                std::slice::from_raw_parts_mut(self.cell.add(units.start), width),
                (!self.outputs.is_null()).then(|| {
                    std::slice::from_raw_parts_mut(self.outputs.add(s * h + units.start), width)
                }),
            )
        };
        // SAFETY: the half's projection is complete before any of its steps runs (`project`)
        // and no longer written.
        let projection = unsafe {
            std::slice::from_raw_parts(self.projections[half].add(s * 4 * width), 4 * width)
        };
        let (gates, tanh_c) = scratch[..5 * width].split_at_mut(4 * width);
        gates.copy_from_slice(projection);
        if s > 0 || self.has_h0 {
            match weights {
                Some(w) => small_matmul(1, h, 4 * width, previous, h, w, gates, 4 * width, true),
                None => {
                    for (g, gate) in gates.chunks_exact_mut(width).enumerate() {
                        let w = &self.params.weight_hh[g * h + units.start..];
                        small_matmul_strided(1, h, width, previous, h, w, 4 * h, gate, width, true);
                    }
                }
            }
        }
        let peepholes = self
            .params
            .peepholes
            .map(|w| w.map(|w| &w[units.start..units.end]));
        let has_cell = s > 0 || self.has_c0;
        lstm_units(gates, tanh_c, cell, hidden, peepholes, has_cell);
        if let Some(output) = output {
            output.copy_from_slice(hidden);
        }
    }
}

// The element-wise part of an LSTM step for a range of units (one row), on every instruction set.
by_instruction_set! {
fn lstm_units(
    gates: &mut [f32],
    tanh_c: &mut [f32],
    cell: &mut [f32],
    hidden: &mut [f32],
    peepholes: Option<[&[f32]; 3]>,
    has_cell: bool,
) {
    lstm_gates(gates, cell, tanh_c, hidden, peepholes, has_cell, 1);
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::forward::tests::Fixture;
    use crate::cpu::{Lengths, forward as batch_forward};

    /// Both halves on the caller's thread, and the second offered to the helper, give the bits of
    /// the sequence's row in a batch of three (the general path), on every instruction set this CPU
    /// runs, for both LSTMs, with and without a state and outputs, over all the steps and fewer,
    /// with halves of 64 units and of 80 and 56.
    #[test]
    fn shared_steps_give_the_bits_of_the_batch() {
        let _serial = crate::cpu::isa::CHOICE_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for set in crate::cpu::InstructionSet::available() {
            crate::cpu::set_instruction_set(Some(set)).unwrap();
            shared_steps_on_the_current_instruction_set();
        }
        crate::cpu::set_instruction_set(None).unwrap();
    }

    fn shared_steps_on_the_current_instruction_set() {
        let set = crate::cpu::instruction_set();
        for cell in [Cell::Lstm, Cell::PeepholeLstm] {
            for (time, input, hidden, with_state) in [
                (8, 40, 128, true),
                (12, 300, 136, false),
                (20, 5, 128, false),
            ] {
                let batch = 3;
                let fixture = Fixture::new(cell, batch, time, input, hidden);
                let params = fixture.params();
                let (x, h0, c0) = (&fixture.x, &fixture.h0, &fixture.c0);
                let initial = |rows: usize| Initial {
                    hidden: with_state.then(|| &h0[..rows * hidden]),
                    cell: with_state.then(|| &c0[..rows * hidden]),
                };
                let bias = crate::cpu::forward::folded_bias(&params).expect("both biases");
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                for (length, outputs) in [(time, true), (time, false), (time - 1, true)] {
                    let dims = Dims {
                        batch,
                        time,
                        input,
                        hidden,
                    };
                    let lengths = [length, length.min(time - 1), 1];
                    let want = batch_forward(
                        dims,
                        &params,
                        x,
                        initial(batch),
                        Lengths(Some(&lengths)),
                        false,
                        outputs,
                    )
                    .packed;
                    let (row, final_at) = Dims { batch: 1, ..dims }.output_layout(cell, outputs);
                    for help in [false, true] {
                        let mut packed = vec![0.0; row];
                        forward(
                            &Dims { batch: 1, ..dims },
                            &params,
                            Some(&bias),
                            &x[..time * input],
                            initial(1),
                            length,
                            outputs,
                            final_at,
                            &mut packed,
                            help,
                        );
                        assert_eq!(
                            bits(&packed),
                            bits(&want[..row]),
                            "{set}: {cell:?} time {time} input {input} hidden {hidden} state \
                             {with_state} length {length} outputs {outputs} help {help}"
                        );
                    }
                }
            }
        }
    }
}
