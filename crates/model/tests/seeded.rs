//! The tests that seed the backends' process-wide random number generators and then draw, as one binary
//! of their own: no other test may draw from those generators meanwhile.

#[macro_use]
mod common;

mod determinism;
mod initialization;

/// Held by every test here: a test that seeds the generators and then draws must not interleave with
/// another, or each would draw part of the other's numbers.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
