//! The MNIST data set held in memory, checked once when loaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;

use idx::IdxError;

/// One image and its label. `pixels` are the raw bytes (0 = background), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistItem {
    /// `rows * cols` grey levels, 0..=255.
    pub pixels: Vec<u8>,
    /// The digit.
    pub label: u8,
}

/// Why an MNIST split could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MnistError {
    /// One of the IDX files is unreadable or malformed.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// Images and labels do not pair up.
    #[error(
        "{images} holds {image_count} images but {labels} holds {label_count} labels; both files must come from the same split"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Images in it.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Labels in it.
        label_count: usize,
    },
    /// A label is not a valid class index.
    #[error(
        "{labels}: label {label} at index {index} is not below the number of classes ({num_classes})"
    )]
    LabelOutOfRange {
        /// The label file.
        labels: PathBuf,
        /// Position of the bad label.
        index: usize,
        /// The label.
        label: u8,
        /// Classes allowed.
        num_classes: usize,
    },
}

/// An MNIST split in memory: images share one buffer, so cloning and subsetting are cheap.
#[derive(Debug, Clone)]
pub struct MnistDataset {
    pixels: Arc<[u8]>,
    labels: Arc<[u8]>,
    rows: usize,
    cols: usize,
    /// Which stored images this dataset exposes, in order; `None` means all of them.
    indices: Option<Arc<[u32]>>,
}

impl MnistDataset {
    /// Number of digit classes in MNIST.
    pub const NUM_CLASSES: usize = 10;

    /// Loads an image file and its label file (raw or gzip), checking that they pair up and that
    /// every label is below `num_classes`.
    pub fn load(images: &Path, labels: &Path, num_classes: usize) -> Result<Self, MnistError> {
        let image_data = idx::read_images(images)?;
        let label_data = idx::read_labels(labels)?;
        if image_data.count != label_data.len() {
            return Err(MnistError::CountMismatch {
                images: images.to_path_buf(),
                image_count: image_data.count,
                labels: labels.to_path_buf(),
                label_count: label_data.len(),
            });
        }
        if let Some((index, &label)) = label_data
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= num_classes)
        {
            return Err(MnistError::LabelOutOfRange {
                labels: labels.to_path_buf(),
                index,
                label,
                num_classes,
            });
        }
        Ok(Self::from_parts(
            image_data.pixels,
            label_data,
            image_data.rows,
            image_data.cols,
        ))
    }

    /// A dataset from raw parts: `pixels` holds `labels.len()` images of `rows × cols` bytes.
    ///
    /// # Panics
    /// If `pixels.len() != labels.len() * rows * cols`: a programming error, not a data error
    /// (files go through [`load`](Self::load), which reports such problems as errors).
    pub fn from_parts(pixels: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * rows * cols,
            "pixel buffer does not hold {} images of {rows}x{cols}",
            labels.len()
        );
        Self {
            pixels: pixels.into(),
            labels: labels.into(),
            rows,
            cols,
            indices: None,
        }
    }

    /// Rows per image (time steps when read row by row).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per image (features per time step when read row by row).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The images at `positions` of this dataset, in that order, sharing the same buffers.
    ///
    /// # Panics
    /// If a position is out of range.
    pub fn subset(&self, positions: &[usize]) -> Self {
        let indices: Vec<u32> = positions
            .iter()
            .map(|&p| {
                assert!(
                    p < self.len(),
                    "position {p} out of range ({} items)",
                    self.len()
                );
                self.stored_index(p) as u32
            })
            .collect();
        Self {
            indices: Some(indices.into()),
            ..self.clone()
        }
    }

    /// The first `n` items (all of them if there are fewer): quick runs on a small subset.
    pub fn take(&self, n: usize) -> Self {
        let positions: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&positions)
    }

    /// The label of the item at `index`, without copying its pixels.
    pub fn label(&self, index: usize) -> Option<u8> {
        (index < self.len()).then(|| self.labels[self.stored_index(index)])
    }

    fn stored_index(&self, position: usize) -> usize {
        match &self.indices {
            Some(indices) => indices[position] as usize,
            None => position,
        }
    }
}

impl Dataset<MnistItem> for MnistDataset {
    fn get(&self, index: usize) -> Option<MnistItem> {
        if index >= self.len() {
            return None;
        }
        let stored = self.stored_index(index);
        let size = self.rows * self.cols;
        Some(MnistItem {
            pixels: self.pixels[stored * size..(stored + 1) * size].to_vec(),
            label: self.labels[stored],
        })
    }

    fn len(&self) -> usize {
        match &self.indices {
            Some(indices) => indices.len(),
            None => self.labels.len(),
        }
    }
}
