//! Every integration test of `model` as one binary: each test binary links all of Burn, so one
//! binary instead of one per file keeps the cold build of the tests short.
//! The tests that set process-wide state run alone, as binaries of their own (see Cargo.toml).

#[macro_use]
mod common;

mod bidirectional;
mod classifier;
mod ctc;
mod import;
mod lengths;
mod parity;
mod record;
mod steps;
