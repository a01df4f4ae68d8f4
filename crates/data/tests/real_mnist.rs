//! Real MNIST, found through `MNIST_DIR` (which `.ci/run` sets), else in the cache that `train`
//! downloads into (never the network). Fails, rather than skips, when it is in neither.

use burn::data::dataset::Dataset;
use data::{MnistFiles, Split};

fn files() -> MnistFiles {
    MnistFiles::locate(None).unwrap_or_else(|e| panic!("this test needs real MNIST: {e}"))
}

#[test]
fn train_split_has_60000_images_starting_5_0_4_1() {
    let train = files().load(Split::Train).unwrap();
    assert_eq!((train.len(), train.rows(), train.cols()), (60_000, 28, 28));
    let first: Vec<u8> = (0..4).map(|i| train.label(i).unwrap()).collect();
    assert_eq!(first, vec![5, 0, 4, 1]);
}

#[test]
fn test_split_has_10000_images_starting_7_2_1_0() {
    let test = files().load(Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    let first: Vec<u8> = (0..4).map(|i| test.label(i).unwrap()).collect();
    assert_eq!(first, vec![7, 2, 1, 0]);
    // Digits are white on black: the border is background, the centre has ink.
    let image = test.get(0).unwrap().pixels;
    assert_eq!(image[0], 0);
    assert!(image.iter().any(|&p| p > 200));
}
