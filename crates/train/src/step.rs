//! The model as Burn's Learner sees it: one training step and one inference step per batch, for
//! every task (a class per sequence, the next token at every step, or a transcription with CTC).

use crate::clipping::clip_global_norm;
use crate::task::Batch;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use data::IGNORE_TARGET;
use model::ctc::{Ctc, ctc_loss_of, greedy};
use model::{
    Input, RecurrentClassifier, RecurrentState, cross_entropy, cross_entropy_ignoring, log_softmax,
};

/// Wraps the model crate's classifier so that this crate can implement Burn's step traits for it.
///
/// Its record nests the classifier's under `model`; the final record is saved from the inner
/// classifier, so other crates load it without knowing this type.
#[derive(Module, Debug)]
pub struct Trainable<B: Backend> {
    /// The classifier being trained.
    pub model: RecurrentClassifier<B>,
    /// The global gradient norm each training step clips to (`gradient_clipping.Norm`), if any.
    #[module(skip)]
    pub max_grad_norm: Option<f64>,
}

impl<B: Backend> Trainable<B> {
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
            Batch::Transcription(batch) => {
                let logits = self
                    .model
                    .forward_steps_lengths(Input::Tokens(batch.inputs), &batch.lengths);
                let log_probs = log_softmax(logits, 2);
                let dims = log_probs.dims();
                let device = log_probs.device();
                // Read once: the loss and the accuracy's decoding both use them.
                let values: Vec<f32> = log_probs
                    .clone()
                    .detach()
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("floats");
                let loss = ctc_loss_of(log_probs, &values, &batch.targets, &batch.lengths, CTC);
                exact_matches(loss, &values, dims, &batch.targets, &batch.lengths, &device)
            }
        }
    }

    /// Whether this model's cells carry a cell state (LSTMs).
    fn has_cell_state(&self) -> bool {
        self.model.rnn.layers[0].cell().has_cell_state()
    }
}

/// The CTC loss of transcription runs: the blank is output id 0. Training examples always fit
/// their steps (`StepLayout::training_steps`); a validation word whose pronunciation cannot fit the
/// layout (an abbreviation read as words) counts 0 in the loss, rather than making it infinite, and
/// as wrong in the accuracy.
const CTC: Ctc = Ctc {
    blank: 0,
    zero_infinity: true,
};

/// The output Burn's loss and accuracy metrics read for a transcription batch: the loss, and per
/// example a one-hot `[wrong, right]` row against a target of "right", so that the accuracy column
/// is the share of examples whose greedy transcription is exactly their pronunciation.
fn exact_matches<B: Backend>(
    loss: Tensor<B, 1>,
    log_probs: &[f32],
    [batch, steps, classes]: [usize; 3],
    targets: &[Vec<usize>],
    lengths: &[usize],
    device: &B::Device,
) -> ClassificationOutput<B> {
    let mut rows = Vec::with_capacity(2 * batch);
    for (n, (target, &length)) in targets.iter().zip(lengths).enumerate() {
        let row = &log_probs[n * steps * classes..][..length * classes];
        let right = greedy(row, classes, CTC.blank).tokens == *target;
        rows.extend(if right { [0.0, 1.0] } else { [1.0, 0.0] });
    }
    let output = Tensor::<B, 2>::from_data(TensorData::new(rows, [batch, 2]), device);
    let right = Tensor::<B, 1, Int>::ones([batch], device);
    ClassificationOutput::new(loss, output, right)
}

/// Every layer's state as a flat list of detached tensors (h, then c where the cell has one), the
/// form a [`StateCarry`] keeps.
pub fn flatten_states<B: Backend>(states: Vec<RecurrentState<B>>) -> Vec<Tensor<B, 2>> {
    states
        .into_iter()
        .map(RecurrentState::detach)
        .flat_map(|state| std::iter::once(state.hidden).chain(state.cell))
        .collect()
}

/// The inverse of [`flatten_states`].
pub fn unflatten_states<B: Backend>(
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

impl<B: AutodiffBackend> TrainStep for Trainable<B> {
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

impl<B: Backend> InferenceStep for Trainable<B> {
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: Batch<B>) -> ClassificationOutput<B> {
        self.classify(batch)
    }
}
