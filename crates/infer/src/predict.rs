//! Class probabilities for images, at the end of the sequence or after every step of it.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use data::{MnistBatcher, MnistItem, SequenceBatch, SequenceInfo, TsBatcher, TsExample};
use model::RecurrentClassifier;

/// The model's answer for one image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The most probable class.
    pub digit: usize,
    /// Softmax probabilities, one per class.
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// The prediction made of one row of softmax probabilities.
    fn from_probabilities(row: &[f32]) -> Self {
        let digit = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        Self {
            digit,
            probabilities: row.to_vec(),
        }
    }
}

/// How the model read one image: its prediction after each step of the sequence (e.g. after each row),
/// the head applied to the hidden state so far. The last step is the model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// One prediction per time step, in reading order.
    pub steps: Vec<Prediction>,
}

impl Reading {
    /// The prediction after the whole sequence: what [`predict`] gives.
    pub fn last(&self) -> &Prediction {
        self.steps.last().expect("a sequence has at least one step")
    }
}

/// Classifies `images` (raw 0..=255 grey levels, `rows × cols` each), normalized by `batcher`.
pub fn predict<B: Backend>(
    model: &RecurrentClassifier<B>,
    batcher: &MnistBatcher,
    images: &[Vec<u8>],
    device: &B::Device,
) -> Vec<Prediction> {
    if images.is_empty() {
        return Vec::new();
    }
    let batch = to_batch::<B>(batcher, images, device);
    let classes = model.config().num_classes;
    let probabilities = to_vec(softmax(model.forward(batch.sequences), 1).into_data());
    probabilities
        .chunks(classes)
        .map(Prediction::from_probabilities)
        .collect()
}

/// Classifies `.ts` examples with a run's normalization (`info`), in batches of `batch_size`; the
/// examples' own labels are not read.
pub fn predict_sequences<B: Backend>(
    model: &RecurrentClassifier<B>,
    info: &SequenceInfo,
    examples: &[TsExample],
    batch_size: usize,
    device: &B::Device,
) -> Vec<Prediction> {
    let batcher = TsBatcher::new(info);
    let classes = model.config().num_classes;
    let mut predictions = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let batch: SequenceBatch<B> = batcher.batch(chunk.to_vec(), device);
        let logits = model.forward_lengths(batch.sequences, batch.lengths.as_deref());
        let probabilities = to_vec(softmax(logits, 1).into_data());
        predictions.extend(
            probabilities
                .chunks(classes)
                .map(Prediction::from_probabilities),
        );
    }
    predictions
}

/// Reads one image (raw 0..=255 grey levels) step by step, normalized and ordered by `batcher`.
pub fn read_steps<B: Backend>(
    model: &RecurrentClassifier<B>,
    batcher: &MnistBatcher,
    image: &[u8],
    device: &B::Device,
) -> Reading {
    let batch = to_batch::<B>(batcher, &[image.to_vec()], device);
    let classes = model.config().num_classes;
    let probabilities = to_vec(softmax(model.forward_per_step(batch.sequences), 2).into_data());
    Reading {
        steps: probabilities
            .chunks(classes)
            .map(Prediction::from_probabilities)
            .collect(),
    }
}

fn to_batch<B: Backend>(
    batcher: &MnistBatcher,
    images: &[Vec<u8>],
    device: &B::Device,
) -> SequenceBatch<B> {
    let items = images
        .iter()
        .map(|pixels| MnistItem {
            pixels: pixels.clone(),
            label: 0,
        })
        .collect();
    batcher.batch(items, device)
}

fn to_vec(data: burn::tensor::TensorData) -> Vec<f32> {
    data.convert::<f32>().to_vec().expect("converted to f32")
}
