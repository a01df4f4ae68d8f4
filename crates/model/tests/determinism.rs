//! Gradients are bitwise identical from run to run on every enabled backend, whatever the heap layout:
//! the condition for reproducible training and exact `--resume`.

use crate::SEEDED;

use burn::module::Module;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use model::{ModelConfig, cross_entropy};

#[test]
fn gradients_do_not_depend_on_memory_layout() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
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
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    type B = burn::backend::NdArray;
    let device = Default::default();
    let logits = Tensor::<B, 2>::from_data([[1.0f32, 2.0, 3.0], [0.5, -1.0, 4.0]], &device);
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
    let loss: f32 = cross_entropy(logits, targets).into_scalar();
    let row = |x: [f32; 3], t: usize| x.iter().map(|v| v.exp()).sum::<f32>().ln() - x[t];
    let expected = (row([1.0, 2.0, 3.0], 2) + row([0.5, -1.0, 4.0], 0)) / 2.0;
    assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
}

/// Every parameter's bits after `steps` SGD steps (momentum 0.5) from seed 7, in a rayon pool of
/// `threads` threads: the fused kernels split batches across that pool.
fn trained_bits<B: burn::tensor::backend::AutodiffBackend>(
    threads: usize,
    steps: usize,
) -> Vec<u32> {
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let device: burn::tensor::Device<B> = Default::default();
        B::seed(&device, 7);
        let mut model = ModelConfig::new(28, 10, 2, 10).init::<B>(&device).unwrap();
        let mut optimizer = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.5)))
            .init::<B, model::RecurrentClassifier<B>>();
        let batches: Vec<_> = (0..4)
            .map(|k| {
                let input =
                    Tensor::<B, 3>::random([64, 28, 28], Distribution::Normal(0.0, 1.0), &device);
                let labels: Vec<i64> = (0..64).map(|i| (i * 7 + k) % 10).collect();
                let targets =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [64]), &device);
                (input, targets)
            })
            .collect();
        for step in 0..steps {
            let (input, targets) = &batches[step % batches.len()];
            let loss = cross_entropy(model.forward(input.clone()), targets.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(0.01, model, grads);
        }
        let mut bits = Vec::new();
        let mut add = |t: Tensor<B, 2>| {
            let values = t.into_data().to_vec::<f32>().unwrap();
            bits.extend(values.iter().map(|v| v.to_bits()));
        };
        for layer in &model.rnn.layers {
            add(layer.weight_ih.val());
            add(layer.weight_hh.val());
            for bias in [&layer.bias_ih, &layer.bias_hh].into_iter().flatten() {
                add(bias.val().unsqueeze());
            }
        }
        add(model.fc.weight.val());
        bits
    })
}

#[test]
fn training_gives_the_same_bits_with_one_or_two_threads() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    fn check<B: burn::tensor::backend::AutodiffBackend>(name: &str) {
        let runs = [
            trained_bits::<B>(1, 300),
            trained_bits::<B>(1, 300),
            trained_bits::<B>(2, 300),
            trained_bits::<B>(2, 300),
        ];
        assert!(!runs[0].is_empty());
        assert!(
            runs.iter().all(|r| *r == runs[0]),
            "{name}: weights after 300 steps differ between runs or thread counts"
        );
        // And the weights did move: the test would pass trivially on an untrained model.
        assert_ne!(runs[0], trained_bits::<B>(1, 1), "{name}");
    }
    check::<burn::backend::Autodiff<burn::backend::NdArray>>("ndarray");
    check::<burn::backend::Autodiff<burn::backend::Flex>>("flex");
}

/// The kernels' code paths (AVX-512, AVX2 with FMA, portable: whichever this CPU has) give the same
/// weights after the same training steps: a CPU of another class trains to the same bits. On a CPU
/// with AVX-512 this covers all three paths; a change that rounds differently on one of them fails.
#[test]
fn training_gives_the_same_bits_on_every_instruction_set() {
    use recurrent_ops::cpu::{InstructionSet, set_instruction_set};
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    type B = burn::backend::Autodiff<burn::backend::NdArray>;
    let sets = InstructionSet::available();
    assert!(sets.contains(&InstructionSet::Portable));
    let runs: Vec<_> = sets
        .iter()
        .map(|&set| {
            set_instruction_set(Some(set)).unwrap();
            let bits = trained_bits::<B>(2, 30);
            set_instruction_set(None).unwrap();
            (set, bits)
        })
        .collect();
    for (set, bits) in &runs {
        assert!(
            *bits == runs[0].1,
            "weights after 30 steps differ between the {} and {set} kernels",
            runs[0].0
        );
    }
    assert_ne!(runs[0].1, trained_bits::<B>(2, 1));
}

/// The log-softmax of CTC models has an exact gradient, the same whatever the heap layout. Burn's
/// own reaches NdArray's SIMD reciprocal, approximate on the aligned part of a buffer only: a
/// resumed transcription run then differed from the uninterrupted one in the last bits.
#[test]
fn log_softmax_gradients_are_exact() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    use burn::backend::{Autodiff, NdArray};
    type A = Autodiff<NdArray>;
    let device = Default::default();
    // 128 sums: NdArray's SIMD paths apply from 32 elements.
    let [n, t, c] = [8usize, 16, 12];
    let value = |i: usize, seed: usize| ((i * 7919 + seed * 104_729) % 2011) as f32 / 251.0 - 4.0;
    let logits: Vec<f32> = (0..n * t * c).map(|i| value(i, 1)).collect();
    let weights: Vec<f32> = (0..n * t * c).map(|i| value(i, 2) / 4.0).collect();
    let mut expected = Vec::with_capacity(n * t * c);
    for (x, w) in logits.chunks(c).zip(weights.chunks(c)) {
        let max = x
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = x.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        let total: f64 = w.iter().map(|&v| f64::from(v)).sum();
        expected.extend(
            x.iter()
                .zip(w)
                .map(|(&xv, &wv)| f64::from(wv) - (f64::from(xv) - max).exp() / sum * total),
        );
    }
    let mut runs: Vec<Vec<u32>> = Vec::new();
    let mut churn = Vec::new();
    for rep in 0..6 {
        // Shift heap addresses between repetitions, as above.
        churn.push(vec![0u8; 1 + rep * 37 % 200]);
        let x = Tensor::<A, 3>::from_data(TensorData::new(logits.clone(), [n, t, c]), &device)
            .require_grad();
        let w = Tensor::<A, 3>::from_data(TensorData::new(weights.clone(), [n, t, c]), &device);
        let loss = (model::log_softmax(x.clone(), 2) * w).sum();
        let grad = x
            .grad(&loss.backward())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for (i, (g, e)) in grad.iter().zip(&expected).enumerate() {
            assert!(
                (f64::from(*g) - e).abs() <= 1e-6 * e.abs().max(1.0),
                "element {i}: {g} against {e}"
            );
        }
        runs.push(grad.iter().map(|v| v.to_bits()).collect());
    }
    assert!(
        runs.iter().all(|r| *r == runs[0]),
        "gradients differ between identical runs"
    );
}
