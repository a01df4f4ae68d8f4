//! A character language model's throughput: training characters/s (windows of every stream, the
//! state carried and detached, the config's optimizer and clipping) and generation characters/s
//! (one stream, one character at a time, drawn from the softmax at temperature 1).

use std::time::Instant;

use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use model::{Input, RecurrentState, SequenceModel, cross_entropy_ignoring};
use serde_json::{Value, json};
use train::{ClippingConfig, TrainConfig, WithOptimizer};

use crate::throughput::Throughput;

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed repeats; each figure's median is reported.
    pub repeats: usize,
    /// Training steps (windows) per repeat.
    pub train_steps: usize,
    /// Characters generated per repeat.
    pub generated: usize,
}

/// The model's sizes and the window, in the JSON report's words.
pub fn describe(config: &TrainConfig) -> Value {
    let m = &config.model;
    json!({"cell": m.cell.name(), "vocab_size": m.vocab_size, "embedding_size": m.input_size,
           "hidden_size": m.hidden_size, "num_layers": m.num_layers, "num_classes": m.num_classes,
           "window": window(config), "batch_size": config.batch_size})
}

fn window(config: &TrainConfig) -> usize {
    config.data.text.as_ref().map_or(128, |t| t.window)
}

/// Token ids `[rows, cols]` from a fixed pseudo-random sequence (every backend, every run the same).
fn tokens<B: Backend>(
    rows: usize,
    cols: usize,
    vocab: usize,
    seed: u64,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let mut state = seed;
    let ids: Vec<i64> = (0..rows * cols)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % vocab as u64) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(ids, [rows, cols]), device)
}

/// Training characters/s: `plan.train_steps` windows per repeat, after 3 untimed ones.
pub fn training<B>(
    config: &TrainConfig,
    plan: Plan,
    device: &B::Device,
) -> anyhow::Result<Throughput>
where
    B: AutodiffBackend,
{
    let model = config.model.init::<B>(device)?;
    let vocab = config.model.num_classes;
    let (streams, steps) = (config.batch_size, window(config));
    let windows: Vec<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> = (0..4)
        .map(|k| {
            (
                tokens::<B>(streams, steps, vocab, 2 * k + 1, device),
                tokens::<B>(streams, steps, vocab, 2 * k + 2, device),
            )
        })
        .collect();
    let clipping = config
        .gradient_clipping
        .as_ref()
        .and_then(ClippingConfig::optimizer_clipping);
    Ok(config.optimizer.with_optimizer(
        clipping,
        Loop {
            model,
            windows,
            plan,
            chars: streams * steps,
            device: device.clone(),
        },
    ))
}

struct Loop<B: AutodiffBackend> {
    model: SequenceModel<B>,
    windows: Vec<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)>,
    plan: Plan,
    chars: usize,
    device: B::Device,
}

impl<B> WithOptimizer<SequenceModel<B>, B> for Loop<B>
where
    B: AutodiffBackend,
{
    type Output = Throughput;

    fn run<O: Optimizer<SequenceModel<B>, B> + 'static>(
        self,
        mut optimizer: O,
        learning_rate: f64,
    ) -> Throughput {
        let mut model = Some(self.model);
        let mut state: Option<Vec<RecurrentState<B>>> = None;
        let windows = &self.windows;
        let mut step = |i: usize| {
            let (inputs, targets) = windows[i % windows.len()].clone();
            let current = model.take().expect("the model is put back after each step");
            let (logits, next) = current.forward_steps(Input::Tokens(inputs), state.take());
            state = Some(next.into_iter().map(RecurrentState::detach).collect());
            let [b, t, c] = logits.dims();
            let loss =
                cross_entropy_ignoring(logits.reshape([b * t, c]), targets.reshape([b * t]), -1);
            let gradients = GradientsParams::from_grads(loss.backward(), &current);
            model = Some(optimizer.step(learning_rate, current, gradients));
        };
        for i in 0..3 {
            step(i);
        }
        B::sync(&self.device).expect("the device finishes its work");
        let repeats = (0..self.plan.repeats)
            .map(|_| {
                let start = Instant::now();
                for i in 0..self.plan.train_steps {
                    step(i);
                }
                B::sync(&self.device).expect("the device finishes its work");
                (self.plan.train_steps * self.chars) as f64 / start.elapsed().as_secs_f64()
            })
            .collect();
        Throughput {
            batch_size: self.chars,
            repeats,
        }
    }
}

/// Generation characters/s: one stream, one character at a time fed back with the carried state,
/// each drawn from the softmax (temperature 1) on the host, as `infer generate` does.
pub fn generation<B: burn::tensor::backend::Backend>(
    config: &TrainConfig,
    plan: Plan,
    device: &B::Device,
) -> anyhow::Result<Throughput> {
    // An inference backend runs no dropout.
    let model = config.model.init::<B>(device)?;
    let vocab = config.model.num_classes;
    let mut draw_state = 12345u64;
    let mut run = |n: usize| {
        let mut state: Option<Vec<RecurrentState<B>>> = None;
        let mut token = 0i64;
        for _ in 0..n {
            let input =
                Tensor::<B, 2, Int>::from_data(TensorData::new(vec![token], [1, 1]), device);
            let (logits, next) = model.forward_steps(Input::Tokens(input), state.take());
            state = Some(next);
            let values: Vec<f32> = logits
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("logits are floats");
            let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f64> = values.iter().map(|&v| f64::from(v - max).exp()).collect();
            draw_state = draw_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut u =
                (draw_state >> 11) as f64 / (1u64 << 53) as f64 * weights.iter().sum::<f64>();
            token = (vocab - 1) as i64;
            for (i, w) in weights.iter().enumerate() {
                if u < *w {
                    token = i as i64;
                    break;
                }
                u -= w;
            }
        }
    };
    run(20);
    let repeats = (0..plan.repeats)
        .map(|_| {
            let start = Instant::now();
            run(plan.generated);
            plan.generated as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    Ok(Throughput {
        batch_size: 1,
        repeats,
    })
}

/// The floating-point operations of one character trained (forward and backward, counted as 3×
/// the forward's multiply-adds × 2) and of one generated, from the sizes: recurrent layers' input
/// and recurrent products, and the head (the embedding is a lookup).
pub fn flops_per_char(config: &TrainConfig) -> (f64, f64) {
    let m = &config.model;
    let g = m.cell.gates() as f64 * m.hidden_size as f64;
    let h = m.hidden_size as f64;
    let mut forward = 0.0;
    for k in 0..m.num_layers {
        let input = if k == 0 { m.input_size as f64 } else { h };
        forward += 2.0 * g * (input + h);
    }
    forward += 2.0 * h * m.num_classes as f64;
    (3.0 * forward, forward)
}
