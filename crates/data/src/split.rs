//! A reproducible train/validation split.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::mnist::MnistDataset;

/// Why a split cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "cannot hold out {requested} validation examples from a training set of {available}; choose validation_size below {available}"
)]
pub struct SplitError {
    /// Images asked for.
    pub requested: usize,
    /// Images available.
    pub available: usize,
}

/// Holds out `validation_size` images of `dataset`, chosen by a shuffle seeded with `seed`.
///
/// Returns `(train, validation)`; both keep the original order of the images they contain, so the
/// same seed always gives the same two sets, whatever the batch order later.
pub fn train_validation_split(
    dataset: &MnistDataset,
    validation_size: usize,
    seed: u64,
) -> Result<(MnistDataset, MnistDataset), SplitError> {
    use burn::data::dataset::Dataset;
    let (train, validation) = split_indices(dataset.len(), validation_size, seed)?;
    Ok((dataset.subset(&train), dataset.subset(&validation)))
}

/// The indices of a split of `n` examples: `(train, validation)`, each in increasing order, the
/// `validation_size` validation ones chosen by a shuffle seeded with `seed`.
pub fn split_indices(
    n: usize,
    validation_size: usize,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), SplitError> {
    if validation_size >= n {
        return Err(SplitError {
            requested: validation_size,
            available: n,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let (validation, train) = order.split_at_mut(validation_size);
    validation.sort_unstable();
    train.sort_unstable();
    Ok((train.to_vec(), validation.to_vec()))
}
