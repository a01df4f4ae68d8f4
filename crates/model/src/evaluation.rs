use burn::tensor::{ElementConversion, Int, Tensor};
use recurrent_ops::RecurrentBackend;

use crate::{RecurrentClassifier, cross_entropy};

/// Loss and accuracy of a classifier over a labelled set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy per example.
    pub loss: f64,
    /// Share of examples whose arg-max logit is the label, in percent.
    pub accuracy: f64,
    /// Examples seen.
    pub items: usize,
}

impl<B: RecurrentBackend> RecurrentClassifier<B> {
    /// Evaluates on `(sequences [batch, time, features], lengths, labels [batch])` batches (`lengths`
    /// as in [`forward_lengths`](Self::forward_lengths)). The loss is the mean over examples, not over
    /// batches, so the batch size does not change the result.
    pub fn evaluate<I>(&self, batches: I) -> Evaluation
    where
        I: IntoIterator<Item = (Tensor<B, 3>, Option<Vec<usize>>, Tensor<B, 1, Int>)>,
    {
        let (mut loss_sum, mut correct, mut items) = (0.0f64, 0usize, 0usize);
        for (inputs, lengths, targets) in batches {
            let n = targets.dims()[0];
            if n == 0 {
                continue;
            }
            let logits = self.forward_lengths(inputs, lengths.as_deref());
            let loss = cross_entropy(logits.clone(), targets.clone());
            loss_sum += loss.into_scalar().elem::<f64>() * n as f64;
            let hits = logits.argmax(1).reshape([n]).equal(targets).int().sum();
            correct += hits.into_scalar().elem::<i64>() as usize;
            items += n;
        }
        Evaluation {
            loss: if items > 0 {
                loss_sum / items as f64
            } else {
                f64::NAN
            },
            accuracy: if items > 0 {
                100.0 * correct as f64 / items as f64
            } else {
                f64::NAN
            },
            items,
        }
    }
}
