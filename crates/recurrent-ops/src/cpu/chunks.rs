//! Splitting a batch into contiguous chunks of rows, one per thread.

use rayon::prelude::*;

/// Work (multiply-adds) below which a chunk is not worth a thread hand-off.
const MIN_WORK_PER_CHUNK: usize = 200_000;

/// Rows per chunk: as many chunks as rayon's current pool has threads, each with at least
/// [`MIN_WORK_PER_CHUNK`] of work, and no empty chunk.
pub fn rows_per_chunk(batch: usize, work_per_row: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_work = (batch * work_per_row) / MIN_WORK_PER_CHUNK;
    let chunks = threads.min(by_work).clamp(1, batch.max(1));
    batch.div_ceil(chunks).max(1)
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
