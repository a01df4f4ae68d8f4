//! `cat` and `stack` that keep their inputs alive until the result is recorded.
//!
//! Burn 0.21's autodiff `cat` (and `stack`, which is built on it) releases each input's reference
//! before it records its own step. A `backward()` that finishes on another thread inside that window
//! sweeps the graphs nobody references and can free the inputs' steps, so their parameters silently
//! get no gradient (tracel-ai/burn#5573; here it showed as wrong gradients of bidirectional layers
//! when two threads trained at once). Holding a clone of each input (a reference count, no copy of the
//! data) across the call closes the window. Everything in this workspace joins tensors through these.

use burn::tensor::backend::Backend;
use burn::tensor::{BasicOps, Element, Tensor};

/// [`Tensor::cat`], with the inputs held until the output exists.
#[allow(clippy::disallowed_methods)]
pub fn cat<B, const D: usize, K>(tensors: Vec<Tensor<B, D, K>>, dim: usize) -> Tensor<B, D, K>
where
    B: Backend,
    K: BasicOps<B>,
    K::Elem: Element,
{
    let held = tensors.clone();
    let joined = Tensor::cat(tensors, dim);
    drop(held);
    joined
}

/// [`Tensor::stack`], with the inputs held until the output exists.
pub fn stack<B, const D: usize, const D2: usize, K>(
    tensors: Vec<Tensor<B, D, K>>,
    dim: usize,
) -> Tensor<B, D2, K>
where
    B: Backend,
    K: BasicOps<B>,
    K::Elem: Element,
{
    cat(
        tensors
            .into_iter()
            .map(|tensor| tensor.unsqueeze_dim::<D2>(dim))
            .collect(),
        dim,
    )
}
