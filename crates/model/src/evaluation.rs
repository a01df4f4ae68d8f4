use burn::tensor::{ElementConversion, Int, Tensor};
use recurrent_ops::RecurrentBackend;

use crate::{Input, RecurrentClassifier, RecurrentState, cross_entropy, cross_entropy_ignoring};

/// Loss and accuracy of a model over a labelled set: per example for a classifier, per predicted
/// token for a language model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy per example (per predicted token: nats per character for a character
    /// model).
    pub loss: f64,
    /// Share of examples (tokens) whose arg-max logit is the label, in percent.
    pub accuracy: f64,
    /// Examples (predicted tokens) seen.
    pub items: usize,
}

impl Evaluation {
    /// The loss in bits (per token): nats / ln 2.
    pub fn bits(&self) -> f64 {
        self.loss / std::f64::consts::LN_2
    }

    /// The perplexity: e^loss.
    pub fn perplexity(&self) -> f64 {
        self.loss.exp()
    }
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

    /// Evaluates a model that predicts at every step over windows `(inputs [streams, steps],
    /// targets [streams, steps], first)` read in order, the state carried from each window to the
    /// next and reset where `first`. Targets equal to `ignore` count nowhere. The loss is the mean
    /// over predicted tokens, so windows and streams do not change it.
    pub fn evaluate_windows<I>(&self, windows: I, ignore: i64) -> Evaluation
    where
        I: IntoIterator<Item = (Tensor<B, 2, Int>, Tensor<B, 2, Int>, bool)>,
    {
        let (mut loss_sum, mut correct, mut items) = (0.0f64, 0usize, 0usize);
        let mut state: Option<Vec<RecurrentState<B>>> = None;
        for (inputs, targets, first) in windows {
            if first {
                state = None;
            }
            let (logits, next) = self.forward_steps(Input::Tokens(inputs), state.take());
            state = Some(next);
            let [streams, steps, classes] = logits.dims();
            let logits = logits.reshape([streams * steps, classes]);
            let targets = targets.reshape([streams * steps]);
            let counted = targets.clone().not_equal_elem(ignore);
            let n = counted.clone().int().sum().into_scalar().elem::<i64>() as usize;
            if n == 0 {
                continue;
            }
            let loss = cross_entropy_ignoring(logits.clone(), targets.clone(), ignore);
            loss_sum += loss.into_scalar().elem::<f64>() * n as f64;
            let hits = logits
                .argmax(1)
                .reshape([streams * steps])
                .equal(targets)
                .bool_and(counted)
                .int()
                .sum();
            correct += hits.into_scalar().elem::<i64>() as usize;
            items += n;
        }
        let ratio = |x: f64| {
            if items > 0 {
                x / items as f64
            } else {
                f64::NAN
            }
        };
        Evaluation {
            loss: ratio(loss_sum),
            accuracy: 100.0 * ratio(correct as f64),
            items,
        }
    }
}
