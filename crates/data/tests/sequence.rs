//! Sequence modes: rows, pixels (row-major flattening) and permuted pixels (a fixed, reproducible
//! permutation, saved and reloaded with checks).

use std::sync::Arc;

use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use data::{
    DataConfig, MnistBatcher, MnistItem, Permutation, PermutationError, SequenceBatch,
    SequenceLayout, SequenceMode,
};

type B = NdArray;

fn items() -> Vec<MnistItem> {
    (0..3u8)
        .map(|k| MnistItem {
            pixels: (0..12u8).map(|p| p * 20 + k).collect(),
            label: k,
        })
        .collect()
}

fn values(batcher: &MnistBatcher) -> (Vec<usize>, Vec<f32>) {
    let batch: SequenceBatch<B> = batcher.batch(items(), &Default::default());
    let dims = batch.sequences.dims().to_vec();
    (dims, batch.sequences.into_data().to_vec().unwrap())
}

#[test]
fn each_mode_has_its_shape() {
    assert_eq!(SequenceMode::Rows.shape(28, 28), (28, 28));
    assert_eq!(SequenceMode::Pixels.shape(28, 28), (784, 1));
    assert_eq!(SequenceMode::PermutedPixels.shape(28, 28), (784, 1));
    let rows = MnistBatcher::new(3, 4, 0.0, 1.0);
    assert_eq!(values(&rows).0, [3, 3, 4]);
    let pixels = rows.clone().with_layout(SequenceLayout::Pixels);
    assert_eq!(values(&pixels).0, [3, 12, 1]);
    let permuted = rows.with_layout(SequenceLayout::PermutedPixels(Arc::new(
        Permutation::from_seed(12, 1),
    )));
    assert_eq!(values(&permuted).0, [3, 12, 1]);
}

#[test]
fn the_pixel_sequence_is_the_row_major_flattening() {
    let rows = MnistBatcher::new(3, 4, 0.1307, 0.3081);
    let pixels = rows.clone().with_layout(SequenceLayout::Pixels);
    let (_, by_rows) = values(&rows);
    let (_, by_pixels) = values(&pixels);
    assert_eq!(by_rows, by_pixels);
    // Step t of image k is pixel t: the values rise with t as the pixels do.
    let image_1: Vec<f32> = by_pixels[12..24].to_vec();
    let expected: Vec<f32> = (0..12u8).map(|p| rows.normalize(p * 20 + 1)).collect();
    assert_eq!(image_1, expected);
}

#[test]
fn a_permuted_sequence_reads_pixels_in_the_permutations_order() {
    let permutation = Permutation::from_seed(12, 9);
    let batcher = MnistBatcher::new(3, 4, 0.0, 1.0 / 255.0).with_layout(
        SequenceLayout::PermutedPixels(Arc::new(permutation.clone())),
    );
    let (_, got) = values(&batcher);
    for (k, item) in items().iter().enumerate() {
        for (t, &pixel) in permutation.order().iter().enumerate() {
            assert_eq!(
                got[k * 12 + t],
                batcher.normalize(item.pixels[pixel as usize])
            );
        }
    }
}

#[test]
fn the_permutation_is_a_permutation_reproducible_from_its_seed() {
    let a = Permutation::from_seed(784, 42);
    let mut sorted = a.order().to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..784).collect::<Vec<u32>>());
    assert_eq!(a, Permutation::from_seed(784, 42));
    assert_ne!(a, Permutation::from_seed(784, 43));
    // Not the identity, nor close to it.
    let fixed = a
        .order()
        .iter()
        .enumerate()
        .filter(|(t, p)| *t as u32 == **p)
        .count();
    assert!(fixed < 10, "{fixed} fixed points");
}

#[test]
fn a_saved_permutation_loads_back_and_bad_files_are_errors() {
    let dir = std::env::temp_dir().join(format!("data-permutation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("permutation.json");
    let permutation = Permutation::from_seed(784, 5);
    std::fs::write(&path, permutation.to_json()).unwrap();
    assert_eq!(Permutation::load(&path, 784).unwrap(), permutation);

    let config = DataConfig::new().with_sequence(SequenceMode::PermutedPixels);
    // The saved file wins over the seed: a run keeps its own order.
    match config.sequence_layout(28, 28, Some(&path)).unwrap() {
        SequenceLayout::PermutedPixels(p) => assert_eq!(*p, permutation),
        other => panic!("{other:?}"),
    }
    match config.sequence_layout(28, 28, None).unwrap() {
        SequenceLayout::PermutedPixels(p) => assert_eq!(*p, Permutation::from_seed(784, 0)),
        other => panic!("{other:?}"),
    }

    let err = Permutation::load(&path, 100).unwrap_err();
    assert!(
        matches!(err, PermutationError::Invalid { .. }) && err.to_string().contains("784"),
        "{err}"
    );
    std::fs::write(&path, r#"{"order": [0, 1, 1]}"#).unwrap();
    let err = Permutation::load(&path, 3).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    std::fs::write(&path, r#"{"order": [0, 1, 7]}"#).unwrap();
    let err = Permutation::load(&path, 3).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    std::fs::write(&path, "[0, 1").unwrap();
    let err = Permutation::load(&path, 3).unwrap_err();
    assert!(matches!(err, PermutationError::Format { .. }), "{err}");
    let err = Permutation::load(dir.join("absent.json"), 3).unwrap_err();
    assert!(
        matches!(err, PermutationError::Io { .. }) && err.to_string().contains("absent.json"),
        "{err}"
    );
}
