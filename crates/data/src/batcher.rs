//! Turning MNIST items into normalized tensors, one batch at a time.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::mnist::MnistItem;

/// A batch of images read row by row: `images` `[batch, rows, cols]` normalized, `targets` `[batch]`.
#[derive(Debug, Clone)]
pub struct MnistBatch<B: Backend> {
    /// Normalized pixels, one sequence of `rows` time steps of `cols` features per image.
    pub images: Tensor<B, 3>,
    /// Class indices.
    pub targets: Tensor<B, 1, Int>,
}

/// Scales pixels to [0, 1], then normalizes with `(x - mean) / std` (torchvision's `ToTensor` +
/// `Normalize`), and stacks images as row sequences. Normalization runs on the host and each batch is
/// one upload per tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistBatcher {
    rows: usize,
    cols: usize,
    /// The normalized value of every grey level, computed once rather than per pixel or per batch.
    table: [f32; 256],
}

impl MnistBatcher {
    /// A batcher for `rows × cols` images with the given normalization (MNIST: 28, 28, 0.1307, 0.3081).
    pub fn new(rows: usize, cols: usize, mean: f64, std: f64) -> Self {
        let (mean, std) = (mean as f32, std as f32);
        Self {
            rows,
            cols,
            table: std::array::from_fn(|p| (p as f32 / 255.0 - mean) / std),
        }
    }

    /// The normalized value of one raw pixel.
    pub fn normalize(&self, pixel: u8) -> f32 {
        self.table[pixel as usize]
    }

    /// Normalized pixels of `items`, row-major, `[items.len() * rows * cols]`.
    fn pixels(&self, items: &[MnistItem]) -> Vec<f32> {
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
            out.extend(item.pixels.iter().map(|&p| self.table[p as usize]));
        }
        out
    }
}

impl<B: Backend> Batcher<B, MnistItem, MnistBatch<B>> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &B::Device) -> MnistBatch<B> {
        let n = items.len();
        let pixels = self.pixels(&items);
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        MnistBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, self.rows, self.cols]), device),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
