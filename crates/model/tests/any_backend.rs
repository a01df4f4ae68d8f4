//! A Burn backend the project has no kernels for runs the model step by step, with nothing for the user
//! to implement: NdArray of f64 here, a backend type of its own that the kernels' list does not name
//! (the orphan rule would keep a user from implementing `RecurrentBackend` for it). Its outputs, and
//! one optimizer step, agree with the kernels of NdArray of f32 on the same weights. A binary of its
//! own: NdArray of f32 and of f64 share one device, whose default float type the first of them to
//! create a tensor fixes for the whole process (Burn's device settings), so here both compute in f32.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use model::{Cell, ModelConfig, RecurrentClassifier, cross_entropy, has_kernels};

/// NdArray of f32: the fused CPU kernels.
type Kernels = NdArray;
/// NdArray of f64: no kernels, so the step-by-step fallback.
type Plain = NdArray<f64>;

const LENGTHS: [usize; 4] = [6, 3, 6, 1];

/// The same weights on another backend, through a saved record (as `infer` loads a run).
fn moved<A: Backend, B: Backend>(
    model: &RecurrentClassifier<A>,
    tag: &str,
    device: &B::Device,
) -> RecurrentClassifier<B> {
    let dir = std::env::temp_dir().join(format!("any-backend-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.mpk");
    model.save(&path).unwrap();
    let loaded = model.config().load::<B>(&path, device).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

fn input<B: Backend>(device: &B::Device) -> Tensor<B, 3> {
    let values: Vec<f32> = (0..4 * 6 * 5)
        .map(|i| ((i * 37 % 23) as f32 / 11.0) - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(values, [4, 6, 5]), device)
}

fn targets<B: Backend>(device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(vec![0i64, 2, 1, 2], [4]), device)
}

fn values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f64> {
    tensor.into_data().convert::<f64>().to_vec().unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn configs() -> Vec<ModelConfig> {
    let mut configs = Vec::new();
    for cell in Cell::ALL {
        for bidirectional in [false, true] {
            configs.push(
                ModelConfig::new(5, 7, 2, 3)
                    .with_cell(cell)
                    .with_bidirectional(bidirectional),
            );
        }
    }
    configs
}

#[test]
fn only_the_backends_with_kernels_are_taken_for_them() {
    assert!(has_kernels::<Kernels>() && has_kernels::<Autodiff<Kernels>>());
    assert!(!has_kernels::<Plain>() && !has_kernels::<Autodiff<Plain>>());
}

#[test]
fn a_backend_without_kernels_gives_the_kernels_outputs() {
    let device = Default::default();
    for (k, config) in configs().into_iter().enumerate() {
        let model = config.init::<Kernels>(&device).unwrap();
        let plain = moved::<Kernels, Plain>(&model, &format!("forward-{k}"), &device);
        let name = format!("{:?} bidirectional {}", config.cell, config.bidirectional);
        for lengths in [None, Some(&LENGTHS[..])] {
            let a = values(model.forward_lengths(input(&device), lengths));
            let b = values(plain.forward_lengths(input(&device), lengths));
            assert!(max_diff(&a, &b) < 1e-5, "{name} {lengths:?}: {a:?} {b:?}");
            let a = values(model.forward_per_step_lengths(input(&device), lengths));
            let b = values(plain.forward_per_step_lengths(input(&device), lengths));
            assert!(max_diff(&a, &b) < 1e-5, "{name} {lengths:?}: per step");
        }
    }
}

#[test]
fn a_backend_without_kernels_trains_as_the_kernels_do() {
    let device = Default::default();
    for (k, config) in configs().into_iter().enumerate() {
        let name = format!("{:?} bidirectional {}", config.cell, config.bidirectional);
        let model = config.init::<Autodiff<Kernels>>(&device).unwrap();
        let plain = moved::<_, Autodiff<Plain>>(&model, &format!("step-{k}"), &device);
        let model = sgd_steps(model, &device);
        let plain = sgd_steps(plain, &device);
        let a = values(
            model
                .valid()
                .forward_lengths(input(&device), Some(&LENGTHS)),
        );
        let b = values(
            plain
                .valid()
                .forward_lengths(input(&device), Some(&LENGTHS)),
        );
        assert!(max_diff(&a, &b) < 1e-4, "{name}: {a:?} {b:?}");
    }
}

/// Three steps of plain SGD on one batch of different lengths; the loss must fall.
fn sgd_steps<B: burn::tensor::backend::AutodiffBackend>(
    mut model: RecurrentClassifier<B>,
    device: &B::Device,
) -> RecurrentClassifier<B> {
    let mut optimizer = SgdConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let logits = model.forward_lengths(input(device), Some(&LENGTHS));
        let loss = cross_entropy(logits, targets(device));
        losses.push(values(loss.clone())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.5, model, grads);
    }
    assert!(losses[2] < losses[0], "the loss did not fall: {losses:?}");
    model
}
