use burn::tensor::{ElementConversion, Int, Tensor};

use crate::{Input, RecurrentClassifier, RecurrentState, cross_entropy, cross_entropy_ignoring};
use burn::tensor::backend::Backend;

/// Loss and accuracy of a model over a labelled set: per example for a classifier, per predicted
/// token for a language model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy per example (per predicted token: nats per character for a character
    /// model).
    pub loss: f64,
    /// Share of examples (tokens) whose arg-max logit is the label, in percent.
    pub accuracy: f64,
    /// Examples (predicted tokens; words for a transcriber) seen.
    pub items: usize,
    /// A transcriber's token error rate, %: edit distance to the closest reference over its length,
    /// summed over words (phoneme error rate); `None` for other models.
    pub token_error_rate: Option<f64>,
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

impl<B: Backend> RecurrentClassifier<B> {
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
            token_error_rate: None,
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
            token_error_rate: None,
        }
    }
}

/// One batch of transcription examples as [`SequenceModel::evaluate_transcriptions`] reads it.
pub struct TranscriptionExamples<B: Backend> {
    /// Input ids `[batch, steps]`, padded.
    pub inputs: Tensor<B, 2, Int>,
    /// Each example's steps.
    pub lengths: Vec<usize>,
    /// Each example's output ids.
    pub targets: Vec<Vec<usize>>,
    /// Each example's word, an index into the references.
    pub words: Vec<usize>,
}

impl<B: Backend> RecurrentClassifier<B> {
    /// Evaluates a CTC transcriber (blank 0): the mean CTC loss per example (each over its target's
    /// length, as PyTorch's `mean`), and per word, its transcription by `decoding` scored against every
    /// pronunciation in `references[word]` (a pronunciation the input cannot hold counts 0 in the
    /// loss): `accuracy` is the share of words transcribed exactly as one
    /// of them (100 − word error rate), `token_error_rate` the phoneme error rate (the edit distance
    /// to the closest pronunciation over that pronunciation's length, summed over words). A word met
    /// twice (two pronunciations, the same spelling) is scored once; `items` counts words.
    pub fn evaluate_transcriptions<I>(
        &self,
        batches: I,
        references: &[Vec<Vec<u32>>],
        decoding: crate::ctc::Decoding,
    ) -> Evaluation
    where
        I: IntoIterator<Item = TranscriptionExamples<B>>,
    {
        use crate::ctc::{Ctc, edit_distance, forward_backward};
        // A pronunciation its input cannot hold counts 0 in the loss (and as an error below).
        let ctc = Ctc {
            blank: 0,
            zero_infinity: true,
        };
        let (mut loss_sum, mut examples) = (0.0f64, 0usize);
        let mut seen = vec![false; references.len()];
        let (mut words, mut right, mut errors, mut reference_tokens) =
            (0usize, 0usize, 0usize, 0usize);
        for batch in batches {
            let logits = self.forward_steps_lengths(Input::Tokens(batch.inputs), &batch.lengths);
            let dims = logits.dims();
            let [_, steps, classes] = dims;
            let log_probs: Vec<f32> = crate::log_softmax(logits, 2)
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("floats");
            let losses =
                forward_backward(&log_probs, dims, &batch.targets, &batch.lengths, ctc, false);
            for (loss, target) in losses.losses.iter().zip(&batch.targets) {
                loss_sum += loss / target.len().max(1) as f64;
                examples += 1;
            }
            for (row, (&word, &length)) in batch.words.iter().zip(&batch.lengths).enumerate() {
                if std::mem::replace(&mut seen[word], true) {
                    continue;
                }
                let row = &log_probs[row * steps * classes..][..length * classes];
                let output: Vec<u32> = decoding
                    .best(row, classes, 0)
                    .tokens
                    .into_iter()
                    .map(|t| t as u32)
                    .collect();
                let (distance, length) = references[word]
                    .iter()
                    .map(|r| (edit_distance(&output, r), r.len()))
                    .min()
                    .expect("every word has a pronunciation");
                words += 1;
                right += usize::from(distance == 0);
                errors += distance;
                reference_tokens += length;
            }
        }
        let share = |x: usize, of: usize| {
            if of > 0 {
                100.0 * x as f64 / of as f64
            } else {
                f64::NAN
            }
        };
        Evaluation {
            loss: if examples > 0 {
                loss_sum / examples as f64
            } else {
                f64::NAN
            },
            accuracy: share(right, words),
            items: words,
            token_error_rate: Some(share(errors, reference_tokens)),
        }
    }
}
