//! Timing loops and their summary: samples per second over several timed repeats.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use model::{RecurrentClassifier, cross_entropy};
use serde_json::{Value, json};
use train::WithOptimizer;

use crate::burn_nn::BurnLstm;
use crate::workload::Batch;

/// A classifier of sequences, whatever its implementation.
pub trait Classify<B: Backend> {
    /// Logits `[batch, classes]` for the batch's sequences `[batch, time, features]`, each run to its
    /// own length when the batch has lengths.
    fn logits(&self, batch: &Batch<B>) -> Tensor<B, 2>;
}

impl<B: Backend> Classify<B> for RecurrentClassifier<B> {
    fn logits(&self, batch: &Batch<B>) -> Tensor<B, 2> {
        self.forward_lengths(batch.inputs.clone(), batch.lengths.as_deref())
    }
}

impl<B: Backend> Classify<B> for BurnLstm<B> {
    fn logits(&self, batch: &Batch<B>) -> Tensor<B, 2> {
        assert!(
            batch.lengths.is_none(),
            "burn::nn::Lstm has no per-sequence lengths"
        );
        self.forward(batch.inputs.clone())
    }
}

/// Samples per second of each timed repeat.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// Samples in each batch.
    pub batch_size: usize,
    /// One figure per repeat, in the order run.
    pub repeats: Vec<f64>,
}

impl Throughput {
    /// The median repeat: robust to one disturbed repeat.
    pub fn median(&self) -> f64 {
        let mut sorted = self.repeats.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    }

    /// `{"batch_size", "samples_per_s" (median), "repeats"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "batch_size": self.batch_size,
            "samples_per_s": self.median(),
            "repeats": self.repeats,
        })
    }
}

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Untimed iterations first (allocations, autotuning, caches).
    pub warmup: usize,
    /// Iterations per timed repeat.
    pub iterations: usize,
    /// Timed repeats.
    pub repeats: usize,
}

/// `plan.warmup` untimed iterations, then `plan.repeats` timed runs of `plan.iterations`, each
/// iteration `batch_size` samples; the device synchronized before each clock is read.
pub fn time_repeats<B: Backend>(
    plan: Plan,
    batch_size: usize,
    device: &B::Device,
    mut iteration: impl FnMut(usize),
) -> Throughput {
    for i in 0..plan.warmup {
        iteration(i);
    }
    B::sync(device).expect("the device finishes its work");
    let repeats = (0..plan.repeats)
        .map(|_| {
            let start = Instant::now();
            for i in 0..plan.iterations {
                iteration(i);
            }
            B::sync(device).expect("the device finishes its work");
            (plan.iterations * batch_size) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    Throughput {
        batch_size,
        repeats,
    }
}

/// Inference: logits for each batch, read back to the host as a caller would.
pub fn inference<B: Backend, M: Classify<B>>(
    model: &M,
    batches: &[Batch<B>],
    plan: Plan,
    device: &B::Device,
) -> Throughput {
    let batch_size = batches[0].inputs.dims()[0];
    time_repeats::<B>(plan, batch_size, device, |i| {
        let logits = model.logits(&batches[i % batches.len()]);
        std::hint::black_box(logits.into_data());
    })
}

/// Training: forward, cross-entropy, backward and one optimizer step per batch, with the optimizer
/// of the config (run through [`train::OptimizerConfig::with_optimizer`]).
pub struct Training<'a, B: AutodiffBackend, M> {
    /// The model, trained in place.
    pub model: M,
    /// The batches, used in turn.
    pub batches: &'a [Batch<B>],
    /// How long to measure.
    pub plan: Plan,
    /// Where the batches live.
    pub device: B::Device,
}

impl<B: AutodiffBackend, M> WithOptimizer<M, B> for Training<'_, B, M>
where
    M: AutodiffModule<B> + Classify<B>,
{
    type Output = Throughput;

    fn run<O: Optimizer<M, B> + 'static>(self, mut optimizer: O, learning_rate: f64) -> Throughput {
        let batch_size = self.batches[0].inputs.dims()[0];
        let mut model = Some(self.model);
        let batches = self.batches;
        time_repeats::<B>(self.plan, batch_size, &self.device, |i| {
            let batch = &batches[i % batches.len()];
            let current = model.take().expect("the model is put back after each step");
            let loss = cross_entropy(current.logits(batch), batch.labels.clone());
            let gradients = GradientsParams::from_grads(loss.backward(), &current);
            model = Some(optimizer.step(learning_rate, current, gradients));
        })
    }
}
