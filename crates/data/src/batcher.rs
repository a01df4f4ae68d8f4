//! Turning MNIST items into normalized sequence tensors, one batch at a time.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::SequenceLayout;
use crate::mnist::MnistItem;

/// A batch of labelled sequences, whatever their source: `sequences` `[batch, steps, features]`
/// normalized, `lengths` when they differ, `targets` `[batch]`.
#[derive(Debug, Clone)]
pub struct SequenceBatch<B: Backend> {
    /// Normalized values: per example, `steps` time steps of `features` values (MNIST rows: 28 × 28;
    /// pixels: 784 × 1; a `.ts` batch: its longest sequence, zero-padded).
    pub sequences: Tensor<B, 3>,
    /// Each sequence's own length, when the batch holds sequences shorter than `steps`; `None` when
    /// every sequence is `steps` long.
    pub lengths: Option<Vec<usize>>,
    /// Class indices.
    pub targets: Tensor<B, 1, Int>,
}

/// Scales pixels to [0, 1], then normalizes with `(x - mean) / std` (torchvision's `ToTensor` +
/// `Normalize`), and lays images out as sequences. Normalization and reordering run on the host and
/// each batch is one upload per tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistBatcher {
    rows: usize,
    cols: usize,
    layout: SequenceLayout,
    /// The normalized value of every grey level, computed once rather than per pixel or per batch.
    table: [f32; 256],
}

impl MnistBatcher {
    /// A batcher for `rows × cols` images read row by row, with the given normalization (MNIST: 28,
    /// 28, 0.1307, 0.3081).
    pub fn new(rows: usize, cols: usize, mean: f64, std: f64) -> Self {
        let (mean, std) = (mean as f32, std as f32);
        Self {
            rows,
            cols,
            layout: SequenceLayout::Rows,
            table: std::array::from_fn(|p| (p as f32 / 255.0 - mean) / std),
        }
    }

    /// The same batcher reading images in another order. A permutation must cover `rows × cols` pixels.
    pub fn with_layout(mut self, layout: SequenceLayout) -> Self {
        if let SequenceLayout::PermutedPixels(permutation) = &layout {
            assert_eq!(
                permutation.len(),
                self.rows * self.cols,
                "a permutation of {} pixels given to a {}x{} batcher",
                permutation.len(),
                self.rows,
                self.cols
            );
        }
        self.layout = layout;
        self
    }

    /// `(steps, features)` of every sequence this batcher makes.
    pub fn sequence_shape(&self) -> (usize, usize) {
        self.layout.mode().shape(self.rows, self.cols)
    }

    /// The normalized value of one raw pixel.
    pub fn normalize(&self, pixel: u8) -> f32 {
        self.table[pixel as usize]
    }

    /// Normalized pixels of `items` in reading order, `[items.len() * rows * cols]`.
    fn values(&self, items: &[MnistItem]) -> Vec<f32> {
        let size = self.rows * self.cols;
        let mut out = Vec::with_capacity(items.len() * size);
        for item in items {
            assert_eq!(
                item.pixels.len(),
                size,
                "image of {} pixels given to a {}x{} batcher",
                item.pixels.len(),
                self.rows,
                self.cols
            );
            match &self.layout {
                SequenceLayout::Rows | SequenceLayout::Pixels => {
                    out.extend(item.pixels.iter().map(|&p| self.table[p as usize]));
                }
                SequenceLayout::PermutedPixels(permutation) => out.extend(
                    permutation
                        .order()
                        .iter()
                        .map(|&i| self.table[item.pixels[i as usize] as usize]),
                ),
            }
        }
        out
    }
}

impl<B: Backend> Batcher<B, MnistItem, SequenceBatch<B>> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &B::Device) -> SequenceBatch<B> {
        let n = items.len();
        let (steps, features) = self.sequence_shape();
        let values = self.values(&items);
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        SequenceBatch {
            sequences: Tensor::from_data(TensorData::new(values, [n, steps, features]), device),
            lengths: None,
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
