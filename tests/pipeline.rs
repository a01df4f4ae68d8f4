//! Cross-crate: real MNIST through the data crate's batcher is exactly what the PyTorch reference program
//! feeds its model (torchvision's `ToTensor()` then `Normalize((0.1307,), (0.3081,))`), bit for bit.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use lstm_mnist::data::{MnistBatcher, MnistFiles, SequenceBatch, Split};
use lstm_mnist::model::pytorch::{HostTensor, StateDict};

type B = NdArray;

/// torchvision's normalized value of each grey level 0..=255 (tests/fixtures/make_normalization_fixture.py).
fn torchvision_levels() -> Vec<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchvision-mnist-normalization.safetensors");
    let fixture = StateDict::read(&path).unwrap();
    match fixture.get("levels", "the normalization table").unwrap() {
        HostTensor::Float { shape, values } if shape == &[256] => values.clone(),
        other => panic!("{}: `levels` is not [256] f32: {other:?}", path.display()),
    }
}

#[test]
fn batcher_feeds_the_model_what_torchvision_feeds_the_reference_program() {
    // MNIST_DIR, else the cache that `train` downloads into; never the network.
    let files = MnistFiles::locate(None)
        .unwrap_or_else(|error| panic!("this test needs real MNIST: {error}"));
    let test = files.load(Split::Test).unwrap();
    let items: Vec<_> = (0..64).map(|i| test.get(i).unwrap()).collect();
    let levels = torchvision_levels();
    let expected: Vec<f32> = items
        .iter()
        .flat_map(|item| item.pixels.iter().map(|&p| levels[p as usize]))
        .collect();

    let batch: SequenceBatch<B> =
        MnistBatcher::new(28, 28, 0.1307, 0.3081).batch(items, &Default::default());
    let targets: Vec<i64> = batch.targets.clone().into_data().to_vec().unwrap();
    assert_eq!(targets[..8], [7, 2, 1, 0, 4, 1, 4, 9]);
    assert_eq!(batch.sequences.dims(), [64, 28, 28]);
    let ours: Vec<f32> = batch.sequences.into_data().to_vec().unwrap();
    let differing = ours
        .iter()
        .zip(&expected)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(
        differing,
        0,
        "{differing} of {} normalized pixels differ from torchvision's",
        ours.len()
    );
}
