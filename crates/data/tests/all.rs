//! Every integration test of `data` as one binary: each test binary links all of Burn, so one
//! binary instead of one per file keeps the cold build of the tests short.

mod mirror;

mod aeon_files;
mod batcher;
mod download;
mod idx_files;
mod loader;
mod pronunciation;
mod real_mnist;
mod sequence;
mod sktime_files;
mod split;
