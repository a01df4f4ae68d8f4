//! A character language model's run: its held-out text evaluated with the state carried through,
//! and text generated one character at a time.

use burn::tensor::backend::Backend;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use data::{IGNORE_TARGET, Streams, TextParts, Vocabulary};
use model::{Evaluation, Input, RecurrentState, SequenceModel};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::{InferError, Run};

/// The held-out part of a text run's text (the last `test_fraction`), as token ids; `dir` overrides
/// the run's `data.dir`.
pub fn test_tokens(run: &Run, dir: Option<&Path>) -> Result<(PathBuf, Vec<u32>), InferError> {
    let text_config = run.data.text.clone().ok_or_else(|| InferError::RunConfig {
        path: run.dir.join("config.json"),
        message: "data.source is \"text\" but there is no `data.text` section".into(),
    })?;
    let vocabulary = run.vocabulary()?;
    let dir = dir
        .map(Path::to_path_buf)
        .or_else(|| run.data.dir.clone())
        .ok_or_else(|| InferError::RunConfig {
            path: run.dir.join("config.json"),
            message:
                "the run names no data.dir: pass --data-dir DIR (the directory holding the text)"
                    .into(),
        })?;
    let path = dir.join(&text_config.file);
    let test = TextParts::read_test(&path, &text_config)?;
    let tokens = vocabulary.encode(&test, &format!("the test part of {}", path.display()))?;
    Ok((path, tokens))
}

/// Mean loss per predicted character of `tokens` (every character after the first), read as
/// `streams` contiguous streams in windows of `window`, the state carried through each stream.
pub fn evaluate_text<B: Backend>(
    model: &SequenceModel<B>,
    tokens: Vec<u32>,
    streams: usize,
    window: usize,
    device: &B::Device,
) -> Evaluation {
    let set = Streams::new(Arc::new(tokens), streams, window);
    let windows = (0..set.len()).filter_map(|i| set.get(i)).map(|w| {
        let shape = [w.streams, w.steps];
        (
            Tensor::<B, 2, Int>::from_data(TensorData::new(w.inputs, shape), device),
            Tensor::<B, 2, Int>::from_data(TensorData::new(w.targets, shape), device),
            w.index == 0,
        )
    });
    model.evaluate_windows(windows, IGNORE_TARGET)
}

/// How characters are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Logits are divided by it before the softmax: below 1 sharper, above 1 flatter; > 0.
    pub temperature: f64,
    /// Only the `k` most likely characters are drawn from; `None`: all.
    pub top_k: Option<usize>,
    /// Seeds the draws: the same seed, model and prime give the same text.
    pub seed: u64,
}

/// Why generation cannot start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GenerateError {
    /// A temperature that is not a positive number.
    #[error(
        "--temperature is {0}: it must be a positive number (1 samples the model as it is; lower is more conservative)"
    )]
    Temperature(f64),
    /// A length of 0.
    #[error("--length is 0: ask for at least one character")]
    Length,
    /// A top-k of 0.
    #[error("--top-k is 0: it must be at least 1 (or left out to draw from every character)")]
    TopK,
}

impl Sampling {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), GenerateError> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(GenerateError::Temperature(self.temperature));
        }
        if self.top_k == Some(0) {
            return Err(GenerateError::TopK);
        }
        Ok(())
    }
}

/// Writes `length` characters after `prime` (its token ids, at least one), one at a time: the
/// prime is read in one window, then each drawn character is fed back with the carried state.
/// `emit` receives each character as it is drawn.
pub fn generate<B: Backend>(
    model: &SequenceModel<B>,
    vocabulary: &Vocabulary,
    prime: &[u32],
    length: usize,
    sampling: Sampling,
    device: &B::Device,
    mut emit: impl FnMut(char),
) {
    assert!(
        !prime.is_empty(),
        "generation starts from at least one character"
    );
    let mut rng = StdRng::seed_from_u64(sampling.seed);
    let tokens = |ids: Vec<i64>| {
        let n = ids.len();
        Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, n]), device)
    };
    let ids: Vec<i64> = prime.iter().map(|&id| i64::from(id)).collect();
    let (logits, mut state): (_, Vec<RecurrentState<B>>) =
        model.forward_steps(Input::Tokens(tokens(ids)), None);
    let [_, steps, classes] = logits.dims();
    let mut last = logits
        .slice([0..1, steps - 1..steps, 0..classes])
        .reshape([classes]);
    for _ in 0..length {
        let values: Vec<f32> = last
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("logits are floats");
        let id = draw(&values, sampling, &mut rng);
        emit(vocabulary.char(id));
        let (logits, next) =
            model.forward_steps(Input::Tokens(tokens(vec![id as i64])), Some(state));
        state = next;
        last = logits.reshape([classes]);
    }
}

/// Draws one index from `logits / temperature`, restricted to the `top_k` largest (ties kept in
/// index order), by inverting the cumulative distribution at a uniform draw; in f64, in a fixed
/// order, so the same draw gives the same index on every machine.
fn draw(logits: &[f32], sampling: Sampling, rng: &mut StdRng) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    if let Some(k) = sampling.top_k.filter(|&k| k < logits.len()) {
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        order.truncate(k);
        order.sort_unstable();
    }
    let max = order
        .iter()
        .map(|&i| f64::from(logits[i]))
        .fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - max) / sampling.temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (&i, &w) in order.iter().zip(&weights) {
        if u < w {
            return i;
        }
        u -= w;
    }
    *order.last().expect("at least one character")
}

/// The greedy choice of the last step's logits, for tests: the index of the largest.
pub fn argmax<B: Backend>(logits: Tensor<B, 1>) -> usize {
    logits.argmax(0).into_scalar().elem::<i64>() as usize
}
