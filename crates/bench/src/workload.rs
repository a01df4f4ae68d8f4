//! Batches held in memory on the device, so that timings measure compute and not data loading.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};

/// One batch: normalized inputs `[batch, steps, features]` and class labels `[batch]`.
pub type Batch<B> = (Tensor<B, 3>, Tensor<B, 1, Int>);

/// `count` batches of standard-normal inputs (what normalized pixels look like to the model) and
/// uniform labels. The arithmetic of these models does not depend on the values.
pub fn random_batches<B: Backend>(
    count: usize,
    batch_size: usize,
    [steps, features]: [usize; 2],
    classes: usize,
    device: &B::Device,
) -> Vec<Batch<B>> {
    (0..count)
        .map(|_| {
            let inputs = Tensor::random(
                [batch_size, steps, features],
                Distribution::Normal(0.0, 1.0),
                device,
            );
            let labels = Tensor::<B, 1, Int>::random(
                [batch_size],
                Distribution::Uniform(0.0, classes as f64),
                device,
            );
            (inputs, labels)
        })
        .collect()
}
