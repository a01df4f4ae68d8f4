//! The train/validation split: disjoint, complete, and reproducible from its seed.

use burn::data::dataset::Dataset;
use data::{MnistDataset, SplitError, train_validation_split};

/// 100 one-pixel images whose pixel value is their index, so items can be identified.
fn numbered() -> MnistDataset {
    MnistDataset::from_parts((0..100).collect(), (0..100).map(|i| i % 10).collect(), 1, 1)
}

fn ids(dataset: &MnistDataset) -> Vec<u8> {
    dataset.iter().map(|item| item.pixels[0]).collect()
}

#[test]
fn split_is_disjoint_and_complete() {
    let (train, valid) = train_validation_split(&numbered(), 20, 7).unwrap();
    assert_eq!((train.len(), valid.len()), (80, 20));
    let mut all = [ids(&train), ids(&valid)].concat();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<u8>>());
    // Labels travel with their images.
    assert!(valid.iter().all(|item| item.label == item.pixels[0] % 10));
}

#[test]
fn same_seed_same_split_other_seed_other_split() {
    let a = train_validation_split(&numbered(), 20, 7).unwrap();
    let b = train_validation_split(&numbered(), 20, 7).unwrap();
    let c = train_validation_split(&numbered(), 20, 8).unwrap();
    assert_eq!(ids(&a.1), ids(&b.1));
    assert_ne!(ids(&a.1), ids(&c.1));
    // Not simply the first or last images.
    assert_ne!(ids(&a.1), (0..20).collect::<Vec<u8>>());
    assert_ne!(ids(&a.1), (80..100).collect::<Vec<u8>>());
}

#[test]
fn too_large_a_validation_set_is_an_error() {
    let err = train_validation_split(&numbered(), 100, 0).unwrap_err();
    assert_eq!(
        err,
        SplitError {
            requested: 100,
            available: 100
        }
    );
}

#[test]
fn subsets_of_subsets_index_the_original() {
    let (train, _) = train_validation_split(&numbered(), 50, 1).unwrap();
    let first_three = train.take(3);
    assert_eq!(ids(&first_three), ids(&train)[..3].to_vec());
}
