//! Batches held in memory on the device, so that timings measure compute and not data loading.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};

/// One batch: normalized inputs `[batch, steps, features]`, class labels `[batch]`, and each
/// sequence's length when the batch holds sequences of different lengths (padded to its longest).
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// The (padded) sequences.
    pub inputs: Tensor<B, 3>,
    /// One class per sequence.
    pub labels: Tensor<B, 1, Int>,
    /// Each sequence's length, `None` when every sequence runs every step.
    pub lengths: Option<Vec<usize>>,
}

impl<B: Backend> Batch<B> {
    /// The same batch without its lengths: every row runs to the batch's longest sequence, as a model
    /// that knows nothing of lengths runs a padded batch.
    pub fn padded(&self) -> Self {
        Self {
            lengths: None,
            ..self.clone()
        }
    }
}

/// `count` batches of standard-normal inputs (what normalized pixels look like to the model) and
/// uniform labels, every sequence `steps` long. The arithmetic of these models does not depend on the
/// values.
pub fn random_batches<B: Backend>(
    count: usize,
    batch_size: usize,
    [steps, features]: [usize; 2],
    classes: usize,
    device: &B::Device,
) -> Vec<Batch<B>> {
    (0..count)
        .map(|_| random_batch(batch_size, steps, features, classes, None, device))
        .collect()
}

/// Sequence lengths for the variable-length measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthPlan {
    /// The shortest length drawn.
    pub min: usize,
    /// The longest length drawn.
    pub max: usize,
    /// Sort all the lengths before cutting them into batches, as training's batches grouped by length
    /// are; otherwise every batch mixes lengths at random.
    pub grouped: bool,
}

/// `count` batches whose sequences have lengths drawn uniformly from `plan.min..=plan.max` (seeded by
/// `seed`), each batch padded to its own longest sequence (random values in the padding too).
pub fn random_batches_with_lengths<B: Backend>(
    count: usize,
    batch_size: usize,
    plan: LengthPlan,
    features: usize,
    classes: usize,
    seed: u64,
    device: &B::Device,
) -> Vec<Batch<B>> {
    let mut state = seed;
    let span = (plan.max - plan.min + 1) as u64;
    let mut lengths: Vec<usize> = (0..count * batch_size)
        .map(|_| plan.min + (splitmix64(&mut state) % span) as usize)
        .collect();
    if plan.grouped {
        lengths.sort_unstable();
    }
    lengths
        .chunks(batch_size)
        .map(|lengths| {
            let steps = *lengths.iter().max().expect("a batch holds sequences");
            random_batch(
                batch_size,
                steps,
                features,
                classes,
                Some(lengths.to_vec()),
                device,
            )
        })
        .collect()
}

fn random_batch<B: Backend>(
    batch_size: usize,
    steps: usize,
    features: usize,
    classes: usize,
    lengths: Option<Vec<usize>>,
    device: &B::Device,
) -> Batch<B> {
    Batch {
        inputs: Tensor::random(
            [batch_size, steps, features],
            Distribution::Normal(0.0, 1.0),
            device,
        ),
        labels: Tensor::random(
            [batch_size],
            Distribution::Uniform(0.0, classes as f64),
            device,
        ),
        lengths,
    }
}

/// SplitMix64: a small, well-mixed generator, so that the drawn lengths depend on the seed alone.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
