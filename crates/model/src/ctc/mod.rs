//! Connectionist temporal classification (Graves et al., 2006): a per-step distribution over the
//! output tokens plus a blank, trained by a loss summed over every alignment of the target to the
//! steps, and read back by a decoder. What maps a sequence to a shorter one with no alignment given:
//! speech to words, spellings to pronunciations.
//!
//! [`ctc_loss`] is PyTorch's `nn.CTCLoss` (reduction `mean`), computed on the host in log space in
//! f64 and put back into the graph with its gradient, so it runs, and is the same, on every backend.
//! [`greedy`] and [`beam_search`] decode.

mod decode;
mod loss;

pub use decode::{Decoding, Hypothesis, beam_search, edit_distance, greedy};
pub use loss::{Ctc, CtcLosses, ctc_loss, ctc_loss_of, forward_backward};

/// `log(exp(a) + exp(b))`, exact at -∞.
fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}
