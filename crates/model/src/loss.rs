use burn::tensor::{Int, Tensor, backend::Backend};

/// Mean cross-entropy of `logits` `[batch, classes]` against class indices `targets` `[batch]`,
/// computed as PyTorch's `F.cross_entropy` does (log-softmax with the row maximum subtracted).
///
/// Written out rather than taken from `burn::nn::loss` for reproducibility: Burn's version reaches
/// `float_recip` in the backward pass of `log`, and NdArray's SIMD reciprocal is approximate on the
/// aligned part of a buffer only, so gradients changed in the last bits from run to run with the heap
/// layout. Here the gradient of `log(s)` is `1/s` computed by an exact division in the forward pass.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [batch, _] = logits.dims();
    let shifted = logits.clone() - logits.detach().max_dim(1);
    let log_sum_exp = log_sum_exp(shifted.clone(), 1);
    let picked = shifted.gather(1, targets.reshape([batch, 1]));
    (log_sum_exp - picked).mean()
}

/// Log-softmax over `dim` (the row maximum subtracted first), for the per-step distributions of a
/// CTC model. Written out rather than taken from `burn::tensor::activation` for the reason given
/// at [`cross_entropy`]: the same values, a gradient that does not depend on the heap layout.
pub fn log_softmax<B: Backend, const D: usize>(logits: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let shifted = logits.clone() - logits.detach().max_dim(dim);
    let log_sum_exp = log_sum_exp(shifted.clone(), dim);
    shifted - log_sum_exp
}

/// `log(sum(exp(shifted)))` over `dim`, kept as a dimension of size 1. Its value is that of
/// `.log()`; its derivative with respect to the sum is an exact `1/s` from a division in the forward
/// pass, not Burn's backward of `log`, which reaches the approximate SIMD reciprocal.
fn log_sum_exp<B: Backend, const D: usize>(shifted: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let sum_exp = shifted.exp().sum_dim(dim);
    let constant = sum_exp.clone().detach();
    let inverse = constant.ones_like() / constant.clone();
    constant.clone().log() + (sum_exp - constant) * inverse
}

/// Mean cross-entropy of `logits` `[n, classes]` against `targets` `[n]` over the rows whose target
/// is not `ignore`: those rows count in neither the sum nor the count (PyTorch's `ignore_index`).
/// Computed as [`cross_entropy`] is, for the same reproducibility. With no counted row the result is 0.
pub fn cross_entropy_ignoring<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    ignore: i64,
) -> Tensor<B, 1> {
    let [n, _] = logits.dims();
    let ignored = targets.clone().equal_elem(ignore);
    let counted = ignored.clone().bool_not().float();
    let count = counted.clone().sum().detach();
    let safe_targets = targets.mask_fill(ignored, 0);
    let shifted = logits.clone() - logits.detach().max_dim(1);
    let log_sum_exp = log_sum_exp(shifted.clone(), 1);
    let picked = shifted.gather(1, safe_targets.reshape([n, 1]));
    let losses = (log_sum_exp - picked).reshape([n]) * counted;
    // max(count, 1): an all-ignored batch gives 0, not NaN.
    losses.sum() / count.clamp_min(1.0)
}
