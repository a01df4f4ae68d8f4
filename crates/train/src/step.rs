//! The classifier as Burn's Learner sees it: one training step and one inference step per batch.

use crate::clipping::clip_global_norm;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use data::SequenceBatch;
use model::{RecurrentAutodiffBackend, RecurrentBackend, RecurrentClassifier, cross_entropy};

/// Wraps the model crate's classifier so that this crate can implement Burn's step traits for it.
///
/// Its record nests the classifier's under `model`; the final record is saved from the inner
/// classifier, so other crates load it without knowing this type.
#[derive(Module, Debug)]
pub struct Trainable<B: RecurrentBackend> {
    /// The classifier being trained.
    pub model: RecurrentClassifier<B>,
    /// The global gradient norm each training step clips to (`gradient_clipping.Norm`), if any.
    #[module(skip)]
    pub max_grad_norm: Option<f64>,
}

impl<B: RecurrentBackend> Trainable<B> {
    /// Logits and mean cross-entropy for a batch.
    pub fn classify(&self, batch: SequenceBatch<B>) -> ClassificationOutput<B> {
        let logits = self
            .model
            .forward_lengths(batch.sequences, batch.lengths.as_deref());
        let loss = cross_entropy(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl<B: RecurrentAutodiffBackend> TrainStep for Trainable<B> {
    type Input = SequenceBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: SequenceBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let output = self.classify(batch);
        let grads = GradientsParams::from_grads(output.loss.backward(), self);
        let grads = match self.max_grad_norm {
            Some(max_norm) => clip_global_norm(self, grads, max_norm),
            None => grads,
        };
        TrainOutput {
            grads,
            item: output,
        }
    }
}

impl<B: RecurrentBackend> InferenceStep for Trainable<B> {
    type Input = SequenceBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: SequenceBatch<B>) -> ClassificationOutput<B> {
        self.classify(batch)
    }
}
