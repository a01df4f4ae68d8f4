//! The CTC loss: forward (α) and backward (β) recursions over the target with blanks between and
//! around its tokens, in log space.

use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::log_add;

/// The CTC loss's options, as PyTorch's `nn.CTCLoss` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctc {
    /// The blank token's index among the classes.
    pub blank: usize,
    /// Count an impossible alignment (an input too short for its target) as 0, gradient 0, instead
    /// of an infinite loss.
    pub zero_infinity: bool,
}

/// Each sequence's loss and, when asked for, the gradient of each loss with respect to the
/// log-probabilities.
#[derive(Debug, Clone)]
pub struct CtcLosses {
    /// `-log p(target | input)` per sequence; infinite where no alignment exists (0 with
    /// `zero_infinity`).
    pub losses: Vec<f64>,
    /// `[batch, time, classes]`: PyTorch's gradient of each sequence's own loss, `exp(lp) - γ` with γ
    /// the posterior of each token at each step (what the gradient through a log-softmax needs);
    /// zero past an input's length and where its loss is infinite.
    pub grads: Option<Vec<f32>>,
}

/// The losses (and gradients) of a batch of log-probabilities `[batch, time, classes]` (row-major;
/// each row a log-softmax) against `targets` (token indices, none the blank), sequence `n` reading its
/// first `input_lengths[n]` steps (1..=time).
///
/// # Panics
/// On sizes that disagree, a length outside 1..=time, or a target token that is the blank or not a
/// class: the callers check what users give them before it gets here.
pub fn forward_backward(
    log_probs: &[f32],
    [batch, time, classes]: [usize; 3],
    targets: &[Vec<usize>],
    input_lengths: &[usize],
    ctc: Ctc,
    gradients: bool,
) -> CtcLosses {
    assert_eq!(
        log_probs.len(),
        batch * time * classes,
        "log-probabilities size"
    );
    assert_eq!(targets.len(), batch, "one target per sequence");
    assert_eq!(input_lengths.len(), batch, "one input length per sequence");
    assert!(ctc.blank < classes, "the blank is one of the classes");
    let mut losses = Vec::with_capacity(batch);
    let mut grads = gradients.then(|| vec![0.0f32; log_probs.len()]);
    for n in 0..batch {
        let steps = input_lengths[n];
        assert!((1..=time).contains(&steps), "input lengths in 1..=time");
        let target = &targets[n];
        assert!(
            target.iter().all(|&t| t < classes && t != ctc.blank),
            "target tokens are classes other than the blank"
        );
        let lp = &log_probs[n * time * classes..][..steps * classes];
        let grad = grads
            .as_mut()
            .map(|g| &mut g[n * time * classes..][..steps * classes]);
        let loss = sequence(lp, classes, target, ctc.blank, grad);
        losses.push(if loss.is_infinite() && ctc.zero_infinity {
            0.0
        } else {
            loss
        });
    }
    CtcLosses { losses, grads }
}

/// One sequence: its loss, and its gradient into `grad` (`[steps, classes]`, zeros on entry).
fn sequence(
    lp: &[f32],
    classes: usize,
    target: &[usize],
    blank: usize,
    grad: Option<&mut [f32]>,
) -> f64 {
    let steps = lp.len() / classes;
    // The extended target: blank, t1, blank, t2, …, blank.
    let width = 2 * target.len() + 1;
    let label = |s: usize| {
        if s.is_multiple_of(2) {
            blank
        } else {
            target[s / 2]
        }
    };
    let at = |t: usize, c: usize| f64::from(lp[t * classes + c]);
    // A skip from s - 2 to s (over a blank) is allowed between different tokens only.
    let skips = |s: usize| s >= 2 && label(s) != blank && label(s) != label(s - 2);

    let mut alpha = vec![f64::NEG_INFINITY; steps * width];
    alpha[0] = at(0, blank);
    if width > 1 {
        alpha[1] = at(0, label(1));
    }
    for t in 1..steps {
        let (before, now) = alpha.split_at_mut(t * width);
        let before = &before[(t - 1) * width..];
        for s in 0..width {
            let mut a = before[s];
            if s >= 1 {
                a = log_add(a, before[s - 1]);
            }
            if skips(s) {
                a = log_add(a, before[s - 2]);
            }
            now[s] = a + at(t, label(s));
        }
    }
    let last = &alpha[(steps - 1) * width..];
    let mut log_likelihood = last[width - 1];
    if width > 1 {
        log_likelihood = log_add(log_likelihood, last[width - 2]);
    }
    let loss = -log_likelihood;
    let Some(grad) = grad else {
        return loss;
    };
    if loss.is_infinite() {
        return loss;
    }

    // β_t(s) includes step t's emission, as PyTorch's does.
    let mut beta = vec![f64::NEG_INFINITY; steps * width];
    let end = (steps - 1) * width;
    beta[end + width - 1] = at(steps - 1, blank);
    if width > 1 {
        beta[end + width - 2] = at(steps - 1, label(width - 2));
    }
    for t in (0..steps - 1).rev() {
        let (now, after) = beta.split_at_mut((t + 1) * width);
        let now = &mut now[t * width..];
        for s in 0..width {
            let mut b = after[s];
            if s + 1 < width {
                b = log_add(b, after[s + 1]);
            }
            if s + 2 < width && skips(s + 2) {
                b = log_add(b, after[s + 2]);
            }
            now[s] = b + at(t, label(s));
        }
    }

    let mut occupancy = vec![f64::NEG_INFINITY; classes];
    for t in 0..steps {
        occupancy.fill(f64::NEG_INFINITY);
        for s in 0..width {
            let c = label(s);
            occupancy[c] = log_add(occupancy[c], alpha[t * width + s] + beta[t * width + s]);
        }
        for c in 0..classes {
            let lp = at(t, c);
            // α·β counts step t's emission twice: divide it out once, and by p(target).
            let posterior = (occupancy[c] + loss - lp).exp();
            grad[t * classes + c] = (lp.exp() - posterior) as f32;
        }
    }
    loss
}

/// PyTorch's `nn.CTCLoss(blank, reduction='mean', zero_infinity)` of log-probabilities `[batch,
/// time, classes]` (batch first, each row a log-softmax): each sequence's loss divided by its target's
/// length (at least 1), then the mean over the batch. Its gradient with respect to `log_probs` is
/// PyTorch's (see [`CtcLosses::grads`]), computed with the loss on the host and joined to the graph
/// as `s - detach(s) + loss` with `s = Σ log_probs · gradient`: the value is the loss exactly and
/// the gradient exactly the host's, on every backend, autodiff or not.
///
/// # Panics
/// As [`forward_backward`].
pub fn ctc_loss<B: Backend>(
    log_probs: Tensor<B, 3>,
    targets: &[Vec<usize>],
    input_lengths: &[usize],
    ctc: Ctc,
) -> Tensor<B, 1> {
    let values: Vec<f32> = log_probs
        .clone()
        .detach()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("log-probabilities are floats");
    ctc_loss_of(log_probs, &values, targets, input_lengths, ctc)
}

/// [`ctc_loss`] for a caller that already holds the values of `log_probs` on the host (to decode
/// them as well): they are read from the device once, not twice.
///
/// # Panics
/// As [`forward_backward`], or if `values` are not those of `log_probs`' shape.
pub fn ctc_loss_of<B: Backend>(
    log_probs: Tensor<B, 3>,
    values: &[f32],
    targets: &[Vec<usize>],
    input_lengths: &[usize],
    ctc: Ctc,
) -> Tensor<B, 1> {
    let dims = log_probs.dims();
    let device = log_probs.device();
    let track = B::ad_enabled(&device);
    let result = forward_backward(values, dims, targets, input_lengths, ctc, track);
    let batch = dims[0] as f64;
    let weights: Vec<f64> = targets
        .iter()
        .map(|t| 1.0 / (batch * t.len().max(1) as f64))
        .collect();
    let mean: f64 = result.losses.iter().zip(&weights).map(|(l, w)| l * w).sum();
    let value = Tensor::<B, 1>::from_data(TensorData::new(vec![mean as f32], [1]), &device);
    let Some(mut grads) = result.grads else {
        return value;
    };
    let per_sequence = dims[1] * dims[2];
    for (n, w) in weights.iter().enumerate() {
        for g in &mut grads[n * per_sequence..][..per_sequence] {
            *g = (f64::from(*g) * w) as f32;
        }
    }
    let gradient = Tensor::<B, 3>::from_data(TensorData::new(grads, dims), &device);
    let surrogate = (log_probs * gradient).sum();
    surrogate.clone() - surrogate.detach() + value
}
