//! Gradients are bitwise identical from run to run on every enabled backend, whatever the heap layout:
//! the condition for reproducible training and exact `--resume`.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use model::{ModelConfig, cross_entropy};

#[test]
fn gradients_do_not_depend_on_memory_layout() {
    for_each_backend!(|name, device| {
        let mut runs: Vec<Vec<u32>> = Vec::new();
        let mut churn = Vec::new();
        for rep in 0..6 {
            // Shift heap addresses between repetitions: SIMD kernels that split buffers by alignment
            // would give different bits.
            churn.push(vec![0u8; 1 + rep * 37 % 200]);
            <B as burn::tensor::backend::Backend>::seed(&device, 3);
            let model = ModelConfig::new(28, 10, 2, 10).init::<B>(&device).unwrap();
            let input =
                Tensor::<B, 3>::random([64, 28, 28], Distribution::Normal(0.0, 1.0), &device);
            let labels: Vec<i64> = (0..64).map(|i| i % 10).collect();
            let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [64]), &device);
            let grads = cross_entropy(model.forward(input), targets).backward();
            let mut bits = Vec::new();
            for layer in &model.rnn.layers {
                for param in [&layer.weight_ih, &layer.weight_hh] {
                    let grad = param
                        .grad(&grads)
                        .unwrap()
                        .into_data()
                        .to_vec::<f32>()
                        .unwrap();
                    bits.extend(grad.iter().map(|v| v.to_bits()));
                }
            }
            let fc = model
                .fc
                .weight
                .grad(&grads)
                .unwrap()
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            bits.extend(fc.iter().map(|v| v.to_bits()));
            assert!(model.num_params() > 0);
            runs.push(bits);
        }
        assert!(
            runs.iter().all(|r| *r == runs[0]),
            "{name}: gradients differ between identical runs"
        );
    });
}

#[test]
fn cross_entropy_matches_the_definition() {
    type B = burn::backend::NdArray;
    let device = Default::default();
    let logits = Tensor::<B, 2>::from_data([[1.0f32, 2.0, 3.0], [0.5, -1.0, 4.0]], &device);
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
    let loss: f32 = cross_entropy(logits, targets).into_scalar();
    let row = |x: [f32; 3], t: usize| x.iter().map(|v| v.exp()).sum::<f32>().ln() - x[t];
    let expected = (row([1.0, 2.0, 3.0], 2) + row([0.5, -1.0, 4.0], 0)) / 2.0;
    assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
}
