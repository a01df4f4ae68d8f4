//! The model as Burn's Learner sees it: one training step and one inference step per batch, for
//! every task (a class per sequence, or the next token at every step).

use crate::clipping::clip_global_norm;
use crate::task::Batch;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use data::IGNORE_TARGET;
use model::{
    Input, RecurrentAutodiffBackend, RecurrentBackend, RecurrentClassifier, RecurrentState,
    cross_entropy, cross_entropy_ignoring,
};

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
    /// Logits and mean cross-entropy for a batch: per sequence, or per predicted position (the
    /// rows of every step, flattened), the window's final state kept, detached, for the next one.
    pub fn classify(&self, batch: Batch<B>) -> ClassificationOutput<B> {
        match batch {
            Batch::Sequences(batch) => {
                let logits = self
                    .model
                    .forward_lengths(batch.sequences, batch.lengths.as_deref());
                let loss = cross_entropy(logits.clone(), batch.targets.clone());
                ClassificationOutput::new(loss, logits, batch.targets)
            }
            Batch::Text(batch) => {
                let carried = batch.carry.take();
                let state = (!batch.first && !carried.is_empty())
                    .then(|| unflatten_states(carried, self.has_cell_state()));
                let (logits, states) = self.model.forward_steps(Input::Tokens(batch.inputs), state);
                batch.carry.put(flatten_states(states));
                let [streams, steps, classes] = logits.dims();
                let logits = logits.reshape([streams * steps, classes]);
                let targets = batch.targets.reshape([streams * steps]);
                let loss = cross_entropy_ignoring(logits.clone(), targets.clone(), IGNORE_TARGET);
                ClassificationOutput::new(loss, logits, targets)
            }
        }
    }

    fn has_cell_state(&self) -> bool {
        self.model.rnn.layers[0].cell().has_cell_state()
    }
}

/// Every layer's state as a flat list of detached tensors (h, then c where the cell has one), the
/// form a [`StateCarry`] keeps.
pub fn flatten_states<B: RecurrentBackend>(states: Vec<RecurrentState<B>>) -> Vec<Tensor<B, 2>> {
    states
        .into_iter()
        .map(RecurrentState::detach)
        .flat_map(|state| std::iter::once(state.hidden).chain(state.cell))
        .collect()
}

/// The inverse of [`flatten_states`].
pub fn unflatten_states<B: RecurrentBackend>(
    flat: Vec<Tensor<B, 2>>,
    cell_state: bool,
) -> Vec<RecurrentState<B>> {
    let per_layer = 1 + usize::from(cell_state);
    flat.chunks(per_layer)
        .map(|chunk| RecurrentState {
            hidden: chunk[0].clone(),
            cell: chunk.get(1).cloned(),
        })
        .collect()
}

impl<B: RecurrentAutodiffBackend> TrainStep for Trainable<B> {
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: Batch<B>) -> TrainOutput<ClassificationOutput<B>> {
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
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: Batch<B>) -> ClassificationOutput<B> {
        self.classify(batch)
    }
}
