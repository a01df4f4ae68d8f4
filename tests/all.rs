//! Every integration test of `lstm-mnist` as one binary: each test binary links all of Burn, so one
//! binary instead of one per file keeps the cold build of the tests short.

mod backends;
mod infer_roundtrip;
mod pipeline;
mod sequences;
