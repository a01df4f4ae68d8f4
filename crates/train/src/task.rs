//! What a run learns — a class per sequence, or the next character at every step — in one place:
//! the batches of each task, how a model is evaluated on them, and how the result reads.

use burn::tensor::backend::Backend;
use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use data::{DataSource, IGNORE_TARGET, SequenceBatch, TextBatch, TranscriptionBatch};
use model::Evaluation;

use crate::config::TrainConfig;

/// A loader of a task's batches on backend `B`: all that `fit` sees of the data.
pub(crate) type Loader<B> = Arc<dyn DataLoader<B, Batch<B>>>;

/// The task of a run, from its data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// A class per sequence (MNIST, `.ts` files): loss per example, accuracy.
    Classify,
    /// The next character at every step of a text: loss per character (nats), bits, perplexity.
    ModelLanguage,
    /// A shorter, unaligned sequence out (a word's phonemes), with CTC: word and phoneme error rates.
    Transcribe,
}

impl Task {
    /// The task `config` trains.
    pub fn of(config: &TrainConfig) -> Self {
        match config.data.source {
            DataSource::Mnist | DataSource::Ts => Task::Classify,
            DataSource::Text => Task::ModelLanguage,
            DataSource::Pronunciations => Task::Transcribe,
        }
    }

    /// The test figure of a finished run, in one line.
    pub fn test_line(self, result: &Evaluation) -> String {
        match self {
            Task::Classify => format!(
                "test: loss {:.4} accuracy {:.2}% ({} examples)",
                result.loss, result.accuracy, result.items
            ),
            Task::ModelLanguage => format!(
                "test: {:.4} nats/char, {:.4} bits/char, perplexity {:.3}, next-character accuracy {:.2}% ({} characters)",
                result.loss,
                result.bits(),
                result.perplexity(),
                result.accuracy,
                result.items
            ),
            Task::Transcribe => format!(
                "test: word error rate {:.2}%, phoneme error rate {:.2}%, CTC loss {:.4} ({} words, greedy)",
                100.0 - result.accuracy,
                result.token_error_rate.unwrap_or(f64::NAN),
                result.loss,
                result.items
            ),
        }
    }
}

/// A batch of any task: labelled sequences (a class each), or a window of text streams (the next
/// character at every step, the state carried from the previous window).
#[derive(Debug, Clone)]
pub enum Batch<B: Backend> {
    /// Sequences with a class each.
    Sequences(SequenceBatch<B>),
    /// One window of a text pass.
    Text(TextBatch<B>),
    /// Words with their pronunciations.
    Transcription(TranscriptionBatch<B>),
}

/// Loss and accuracy of `model` over every batch of `loader`: per example, or per predicted
/// character of a text read in order with the state carried through.
pub(crate) fn evaluate<B: Backend>(
    model: &model::RecurrentClassifier<B>,
    loader: &Loader<B>,
) -> model::Evaluation {
    let mut batches = loader.iter().peekable();
    match batches.peek() {
        Some(Batch::Text(_)) => model.evaluate_windows(
            batches.filter_map(|batch| match batch {
                Batch::Text(text) => Some((text.inputs, text.targets, text.first)),
                _ => None,
            }),
            IGNORE_TARGET,
        ),
        Some(Batch::Transcription(first)) => {
            let references = first.references.clone();
            model.evaluate_transcriptions(
                batches.filter_map(|batch| match batch {
                    Batch::Transcription(b) => Some(model::TranscriptionExamples {
                        inputs: b.inputs,
                        lengths: b.lengths,
                        targets: b.targets,
                        words: b.words,
                    }),
                    _ => None,
                }),
                &references,
                model::ctc::Decoding::Greedy,
            )
        }
        _ => model.evaluate(batches.filter_map(|batch| match batch {
            Batch::Sequences(batch) => Some((batch.sequences, batch.lengths, batch.targets)),
            _ => None,
        })),
    }
}
