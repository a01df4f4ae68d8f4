//! Every integration test of `infer` as one binary: each test binary links all of Burn, so one
//! binary instead of one per file keeps the cold build of the tests short.

mod server;

mod cli;
mod page;
mod serve;
