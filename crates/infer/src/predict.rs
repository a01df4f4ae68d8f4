//! Class probabilities for images.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use data::{MnistBatch, MnistBatcher, MnistItem};
use model::RecurrentClassifier;

/// The model's answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable class.
    pub digit: usize,
    /// Softmax probabilities, one per class.
    pub probabilities: Vec<f32>,
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
    let items = images
        .iter()
        .map(|pixels| MnistItem {
            pixels: pixels.clone(),
            label: 0,
        })
        .collect();
    let batch: MnistBatch<B> = batcher.batch(items, device);
    let classes = model.config().num_classes;
    let probabilities: Vec<f32> = softmax(model.forward(batch.sequences), 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("converted to f32");
    probabilities
        .chunks(classes)
        .map(|row| Prediction {
            digit: row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i),
            probabilities: row.to_vec(),
        })
        .collect()
}
