//! Every integration test of `train` as one binary: each test binary links all of Burn, so one
//! binary instead of one per file keeps the cold build of the tests short.

mod common;

mod config;
mod download;
mod interrupt;
mod text_runs;
mod training;
mod transcription_runs;
mod ts_runs;
