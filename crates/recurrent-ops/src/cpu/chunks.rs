//! Splitting a batch into contiguous chunks of rows, one per thread.

use rayon::prelude::*;

/// Work (multiply-adds) below which a chunk is not worth a thread hand-off, when calls follow each
/// other (inference: the pool's threads are still awake).
pub const MIN_WORK_PER_CHUNK: usize = 200_000;

/// The same in training, where each call comes after Burn's own single-threaded operations, so the
/// pool's threads have gone to sleep and waking one costs a system call: measured on the reference
/// model (batch 64), its layers ran faster on one thread than split over two.
pub const MIN_WORK_PER_CHUNK_TRAINING: usize = 8_000_000;

/// Values of a step's state and gates per chunk (128 KiB of f32): a chunk's per-step passes then stay
/// in the core's L2 cache.
const MAX_STEP_FLOATS_PER_CHUNK: usize = 1 << 15;

/// Rows per chunk: as many chunks as rayon's current pool has threads, each with at least
/// `min_work` of work, and no empty chunk; more chunks (rayon shares them out) when a
/// chunk's step would hold more than [`MAX_STEP_FLOATS_PER_CHUNK`] values of `step_floats_per_row`
/// each (when given), in multiples of 32 rows (the step product's widest block).
pub fn rows_per_chunk(
    batch: usize,
    work_per_row: usize,
    min_work: usize,
    step_floats_per_row: Option<usize>,
) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_work = (batch * work_per_row) / min_work.max(1);
    let chunks = threads.min(by_work).clamp(1, batch.max(1));
    let rows = batch.div_ceil(chunks).max(1);
    match step_floats_per_row {
        Some(floats) => rows.min((MAX_STEP_FLOATS_PER_CHUNK / floats.max(1) / 32 * 32).max(32)),
        None => rows,
    }
}

/// `buffer` cut into consecutive pieces of `rows` rows of `row_len` values (the last may be shorter),
/// `count` pieces in all; empty pieces when the buffer holds nothing.
pub fn split_mut(buffer: &mut [f32], row_len: usize, rows: usize, count: usize) -> Vec<&mut [f32]> {
    if buffer.is_empty() || row_len == 0 {
        return (0..count).map(|_| -> &mut [f32] { &mut [] }).collect();
    }
    let pieces: Vec<&mut [f32]> = buffer.chunks_mut(rows * row_len).collect();
    debug_assert_eq!(pieces.len(), count);
    pieces
}

/// [`split_mut`] for a shared buffer.
pub fn split(buffer: &[f32], row_len: usize, rows: usize, count: usize) -> Vec<&[f32]> {
    if buffer.is_empty() || row_len == 0 {
        return vec![&[]; count];
    }
    let pieces: Vec<&[f32]> = buffer.chunks(rows * row_len).collect();
    debug_assert_eq!(pieces.len(), count);
    pieces
}

/// Runs `work` on every task, on rayon's pool when there is more than one.
pub fn run<T: Send>(tasks: Vec<T>, work: impl Fn(T) + Sync + Send) {
    if tasks.len() <= 1 {
        tasks.into_iter().for_each(work);
    } else {
        tasks.into_par_iter().for_each(work);
    }
}
