//! Every integration test of `lstm-mnist` as one binary: each test binary links all of Burn, so one
//! binary instead of one per file keeps the cold build of the tests short.

mod backends;
mod infer_roundtrip;
mod pipeline;
mod sequences;

/// Held by every test of this binary: two threads training bidirectional models at once in one process
/// have, now and then, given wrong gradients (a concurrency fault not yet found; docs/benchmarks.md,
/// "Known faults"), so the tests run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
