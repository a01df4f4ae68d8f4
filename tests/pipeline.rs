//! Cross-crate: real MNIST through the data crate's batcher is exactly what the PyTorch reference
//! program feeds its model, and the model crate, given PyTorch's weights, gives PyTorch's logits on it.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use lstm_mnist::data::{MnistBatch, MnistBatcher, MnistFiles, Split};
use lstm_mnist::model::pytorch::StateDict;

type B = NdArray;

fn shared_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/pytorch-lstm-h10-l2.safetensors")
}

#[test]
fn batcher_and_imported_model_reproduce_pytorch_on_real_mnist() {
    // MNIST_DIR, else the cache that `train` downloads into; never the network.
    if let Err(error) = MnistFiles::locate(None) {
        panic!("this test needs real MNIST: {error}");
    }
    let reference = StateDict::read(shared_fixture()).unwrap();
    let device = Default::default();
    // The fixture's input is the first 8 test images, normalized by torchvision.
    let expected_input = reference
        .float_tensor::<B, 3>("input", [8, 28, 28], "", &device)
        .unwrap();
    let expected_logits = reference
        .float_tensor::<B, 2>("logits", [8, 10], "", &device)
        .unwrap();

    let test = MnistFiles::locate(None).unwrap().load(Split::Test).unwrap();
    let items = (0..8).map(|i| test.get(i).unwrap()).collect();
    let batch: MnistBatch<B> = MnistBatcher::new(28, 28, 0.1307, 0.3081).batch(items, &device);
    let targets: Vec<i64> = batch.targets.clone().into_data().to_vec().unwrap();
    assert_eq!(targets, vec![7, 2, 1, 0, 4, 1, 4, 9]);
    let input_diff: f32 = (batch.sequences.clone() - expected_input)
        .abs()
        .max()
        .into_scalar();
    assert!(
        input_diff <= 1e-6,
        "batcher differs from torchvision by {input_diff}"
    );

    let model = reference.to_classifier::<B>(&device).unwrap();
    let logits_diff: f32 = (model.forward(batch.sequences) - expected_logits)
        .abs()
        .max()
        .into_scalar();
    assert!(
        logits_diff <= 1e-5,
        "logits differ from PyTorch's by {logits_diff}"
    );
}
