//! A CTC transcriber's throughput in words/s: training (the training step `train` runs — forward,
//! log-softmax, CTC loss, backward, global-norm clipping, the exact-match decoding of its accuracy
//! column — then the config's optimizer) and greedy transcription (forward, log-softmax, best path on
//! the host, as `infer transcribe` does).
//!
//! The words are made up, the same on every run and on PyTorch's side (`benches/pytorch_g2p.py`
//! draws them with the same generator): spellings of 4–11 letters, uniform (CMUdict's mean is 7.5),
//! each letter two steps plus one padding step (the config's layout), pronunciations of
//! `round(0.85 × letters)` phonemes (CMUdict's mean is 6.4). Each pool of 16 batches is sorted by
//! length before it is cut, as training's batches grouped by length are.

use burn::data::dataloader::batcher::Batcher;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::backend::Backend;
use burn::train::TrainStep;
use data::{TranscriptionBatch, TranscriptionBatcher, TranscriptionItem, TranscriptionSet};
use model::ctc::greedy;
use model::{Input, log_softmax};
use serde_json::{Value, json};
use train::{Batch, TrainConfig, Trainable, WithOptimizer};

use crate::throughput::{self, Throughput};

/// Letters of the shortest and the longest word.
pub const LETTERS: (usize, usize) = (4, 11);
/// Batches per pool sorted by length (as `data::EpochLoader::POOL_BATCHES`).
const POOL_BATCHES: usize = 16;

/// How long to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Timed repeats; each figure's median is reported.
    pub repeats: usize,
    /// Training steps (batches) per repeat.
    pub train_steps: usize,
    /// Transcription batch sizes.
    pub infer_batches: Vec<usize>,
    /// Words transcribed per repeat (rounded up to whole batches).
    pub infer_words: usize,
}

/// The sizes measured, in the JSON report's words.
pub fn describe(config: &TrainConfig) -> Value {
    let m = &config.model;
    json!({"cell": m.cell.name(), "vocab_size": m.vocab_size, "embedding_size": m.input_size,
           "hidden_size": m.hidden_size, "num_layers": m.num_layers, "bidirectional": m.bidirectional,
           "num_classes": m.num_classes, "batch_size": config.batch_size,
           "letters": [LETTERS.0, LETTERS.1], "repeat": repeat(config), "padding": padding(config),
           "dropout": m.dropout, "output_dropout": m.output_dropout})
}

fn repeat(config: &TrainConfig) -> usize {
    config
        .data
        .pronunciations
        .as_ref()
        .map_or(2, |p| p.repeat.max(1))
}

fn padding(config: &TrainConfig) -> usize {
    config.data.pronunciations.as_ref().map_or(1, |p| p.padding)
}

/// The made-up words, cut into batches of `batch_size` (see the module's documentation). `seed`
/// starts the generator: 1 for training, 2 for transcription on both sides.
pub fn batches(config: &TrainConfig, batch_size: usize, seed: u64) -> Vec<Vec<TranscriptionItem>> {
    let vocab = config.model.vocab_size.unwrap_or(0) as u64;
    let classes = config.model.num_classes as u64;
    let mut state = seed;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let count = batch_size * POOL_BATCHES;
    let mut words: Vec<TranscriptionItem> = (0..count)
        .map(|word| {
            let letters = LETTERS.0 + next((LETTERS.1 - LETTERS.0 + 1) as u64) as usize;
            let spelling: Vec<u32> = (0..letters).map(|_| 1 + next(vocab - 1) as u32).collect();
            let sounds = ((letters as f64) * 0.85).round() as usize;
            let target: Vec<u32> = (0..sounds).map(|_| 1 + next(classes - 1) as u32).collect();
            let mut steps: Vec<u32> = spelling
                .iter()
                .flat_map(|&t| std::iter::repeat_n(t, repeat(config)))
                .collect();
            steps.extend(std::iter::repeat_n(0, padding(config)));
            TranscriptionItem {
                word,
                steps,
                target,
            }
        })
        .collect();
    // Stable, longest first: the order is the same on PyTorch's side.
    words.sort_by_key(|w| std::cmp::Reverse(w.steps.len()));
    words.chunks(batch_size).map(<[_]>::to_vec).collect()
}

fn tensors<B: Backend>(
    items: &[Vec<TranscriptionItem>],
    device: &B::Device,
) -> Vec<TranscriptionBatch<B>> {
    let batcher = TranscriptionBatcher::new(&TranscriptionSet::default());
    items
        .iter()
        .map(|words| batcher.batch(words.clone(), device))
        .collect()
}

/// Training words/s: `plan.train_steps` batches per repeat, after 3 untimed ones.
pub fn training<B: AutodiffBackend>(
    config: &TrainConfig,
    plan: &Plan,
    device: &B::Device,
) -> anyhow::Result<Throughput> {
    let model = Trainable {
        model: config.model.init::<B>(device)?,
        max_grad_norm: config
            .gradient_clipping
            .as_ref()
            .and_then(train::ClippingConfig::max_norm),
    };
    let clipping = config
        .gradient_clipping
        .as_ref()
        .and_then(train::ClippingConfig::optimizer_clipping);
    let batches = tensors::<B>(&batches(config, config.batch_size, 1), device);
    Ok(config.optimizer.with_optimizer(
        clipping,
        Loop {
            model,
            batches,
            plan: plan.clone(),
            device: device.clone(),
        },
    ))
}

struct Loop<B: AutodiffBackend> {
    model: Trainable<B>,
    batches: Vec<TranscriptionBatch<B>>,
    plan: Plan,
    device: B::Device,
}

impl<B: AutodiffBackend> WithOptimizer<Trainable<B>, B> for Loop<B> {
    type Output = Throughput;

    fn run<O: Optimizer<Trainable<B>, B> + 'static>(
        self,
        mut optimizer: O,
        learning_rate: f64,
    ) -> Throughput {
        let mut model = Some(self.model);
        let batches = &self.batches;
        // Every batch holds `batch_size` words (see [`batches`]).
        let words = batches[0].lengths.len();
        let plan = throughput::Plan {
            warmup: 3,
            iterations: self.plan.train_steps,
            repeats: self.plan.repeats,
        };
        throughput::time_repeats::<B>(plan, words, &self.device, |i| {
            let batch = batches[i % batches.len()].clone();
            let current = model.take().expect("the model is put back after each step");
            let output = current.step(Batch::Transcription(batch));
            model = Some(optimizer.step(learning_rate, current, output.grads));
        })
    }
}

/// Greedy transcription words/s at each of `plan.infer_batches`: logits, log-softmax, the values
/// read to the host and each word's best path collapsed, as `infer transcribe` does.
pub fn transcription<B: Backend>(
    config: &TrainConfig,
    plan: &Plan,
    device: &B::Device,
) -> anyhow::Result<Vec<Throughput>> {
    // An inference backend runs no dropout.
    let model = config.model.init::<B>(device)?;
    let classes = config.model.num_classes;
    Ok(plan
        .infer_batches
        .iter()
        .map(|&batch_size| {
            let batches = tensors::<B>(&batches(config, batch_size, 2), device);
            let iterations = plan.infer_words.div_ceil(batch_size);
            let timing = throughput::Plan {
                warmup: (iterations / 10).max(2),
                iterations,
                repeats: plan.repeats,
            };
            throughput::time_repeats::<B>(timing, batch_size, device, |i| {
                let batch = &batches[i % batches.len()];
                let logits = model
                    .forward_steps_lengths(Input::Tokens(batch.inputs.clone()), &batch.lengths);
                let steps = logits.dims()[1];
                let values: Vec<f32> = log_softmax(logits, 2)
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("floats");
                for (n, &length) in batch.lengths.iter().enumerate() {
                    let row = &values[n * steps * classes..][..length * classes];
                    std::hint::black_box(greedy(row, classes, 0));
                }
            })
        })
        .collect())
}
