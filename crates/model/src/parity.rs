//! Numerical parity with PyTorch: run a reference state_dict's model in Burn and compare with the
//! outputs PyTorch recorded in the same file.
//!
//! A reference file holds the weights, an `input` batch `[N, T, F]` with `target` labels, PyTorch's
//! `logits` on it, and `logits_after_2_steps`: the logits after two `torch.optim.SGD` steps (learning rate
//! and momentum from the metadata keys `lr` and `momentum`, dampening 0) on the mean cross-entropy, or,
//! with the metadata `optimizer: rmsprop`, two `torch.optim.RMSprop` steps (`alpha`, `epsilon`,
//! `momentum`, `centered`).
//!
//! A file may also hold `lengths` (`[N]` integers, each in `1..=T`): PyTorch then ran the batch as
//! packed sequences (`pack_padded_sequence(input, lengths, batch_first=True, enforce_sorted=False)`),
//! and Burn runs it through [`RecurrentClassifier::forward_lengths`]; the values of `input` past each
//! length are arbitrary (the fixtures put NaN and ±1e30 there) and must not matter.

use burn::module::AutodiffModule;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, RmsPropConfig, SgdConfig};
use burn::tensor::{ElementConversion, Int, Tensor};
use recurrent_ops::RecurrentAutodiffBackend;

use crate::pytorch::{HostTensor, ImportError, StateDict};
use crate::{RecurrentClassifier, cross_entropy};

/// Largest accepted |Burn − PyTorch| on the initial logits. Float rounding differs between the two in the
/// last bits (PyTorch itself, rerun on another CPU, moves these fixtures' logits by up to 1.2e-7).
pub const LOGITS_TOLERANCE: f32 = 2.5e-7;
/// Largest accepted |Burn − PyTorch| on the logits after two SGD steps.
pub const AFTER_STEPS_TOLERANCE: f32 = 2.5e-7;
/// Largest accepted |Burn − PyTorch| on the mean cross-entropy loss of the initial logits.
pub const LOSS_TOLERANCE: f32 = 5e-7;

/// How far Burn's numbers are from PyTorch's for one reference file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParityReport {
    /// max |Δ| of the logits with the imported weights.
    pub logits_max_abs_diff: f32,
    /// max |Δ| of the logits after two SGD steps.
    pub after_2_steps_max_abs_diff: f32,
    /// |Δ| of the mean cross-entropy loss, when the file records it.
    pub loss_abs_diff: Option<f32>,
}

impl ParityReport {
    /// Whether every difference is within its tolerance: [`LOGITS_TOLERANCE`],
    /// [`AFTER_STEPS_TOLERANCE`], and [`LOSS_TOLERANCE`] when the file records the loss. A NaN fails.
    pub fn passes(&self) -> bool {
        self.logits_max_abs_diff <= LOGITS_TOLERANCE
            && self.after_2_steps_max_abs_diff <= AFTER_STEPS_TOLERANCE
            && self.loss_abs_diff.is_none_or(|loss| loss <= LOSS_TOLERANCE)
    }
}

/// Loads the reference model from `reference`, reproduces PyTorch's forward pass and two SGD steps on
/// backend `B`, and reports the differences.
pub fn check<B: RecurrentAutodiffBackend>(
    reference: &StateDict,
    device: &B::Device,
) -> Result<ParityReport, ImportError> {
    let model: RecurrentClassifier<B> = reference.to_classifier(device)?;
    let config = model.config();
    let input_shape = reference.get("input", "parity check")?.shape().to_vec();
    let [n, t, f] = input_shape[..] else {
        return Err(input_shape_error(
            reference,
            &input_shape,
            config.input_size,
        ));
    };
    if f != config.input_size {
        return Err(input_shape_error(
            reference,
            &input_shape,
            config.input_size,
        ));
    }
    let input: Tensor<B, 3> =
        reference.float_tensor("input", [n, t, f], "the parity batch", device)?;
    let targets = reference.int_tensor::<B>("target", device)?;
    let lengths = sequence_lengths_of(reference, n, t)?;
    let lengths = lengths.as_deref();
    let classes = [n, config.num_classes];
    let expected_logits: Tensor<B, 2> =
        reference.float_tensor("logits", classes, "one row of logits per input", device)?;
    let expected_after: Tensor<B, 2> = reference.float_tensor(
        "logits_after_2_steps",
        classes,
        "one row of logits per input",
        device,
    )?;

    let logits = model.forward_lengths(input.clone(), lengths);
    let logits_max_abs_diff = max_abs_diff(logits.clone(), expected_logits);
    let loss_abs_diff = match reference.tensors.get("loss") {
        Some(HostTensor::Float { values, .. }) if values.len() == 1 => {
            let loss = cross_entropy(logits, targets.clone());
            Some((loss.into_scalar().elem::<f32>() - values[0]).abs())
        }
        _ => None,
    };

    let lr = reference.metadata_f64("lr")?;
    let momentum = reference.metadata_f64("momentum")?;
    let model = match reference.metadata.get("optimizer").map(String::as_str) {
        // torch.optim.RMSprop: Burn's RmsProp has the same update (running mean of g², then
        // g / (√s + eps), then momentum), given PyTorch's values for every option.
        Some("rmsprop") => {
            let centered = reference.metadata.get("centered").map(String::as_str) == Some("true");
            let optimizer = RmsPropConfig::new()
                .with_alpha(reference.metadata_f64("alpha")? as f32)
                .with_epsilon(reference.metadata_f64("epsilon")? as f32)
                .with_momentum(momentum as f32)
                .with_centered(centered)
                .init::<B, RecurrentClassifier<B>>();
            two_steps(model, optimizer, lr, &input, lengths, &targets)
        }
        _ => {
            let optimizer = SgdConfig::new()
                .with_momentum((momentum != 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                }))
                .init::<B, RecurrentClassifier<B>>();
            two_steps(model, optimizer, lr, &input, lengths, &targets)
        }
    };
    let after = model.valid().forward_lengths(input.inner(), lengths);
    let after_2_steps_max_abs_diff = max_abs_diff(after, expected_after.inner());

    Ok(ParityReport {
        logits_max_abs_diff,
        after_2_steps_max_abs_diff,
        loss_abs_diff,
    })
}

/// Two optimizer steps on the mean cross-entropy of one batch, as the reference files record them.
fn two_steps<B: RecurrentAutodiffBackend, O: Optimizer<RecurrentClassifier<B>, B>>(
    mut model: RecurrentClassifier<B>,
    mut optimizer: O,
    lr: f64,
    input: &Tensor<B, 3>,
    lengths: Option<&[usize]>,
    targets: &Tensor<B, 1, Int>,
) -> RecurrentClassifier<B> {
    for _ in 0..2 {
        let logits = model.forward_lengths(input.clone(), lengths);
        let loss = cross_entropy(logits, targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
    }
    model
}

/// The per-sequence `lengths` of a reference file's `input` `[N, T, F]`, when the file has them (PyTorch
/// then ran it on packed sequences): `[N]` integers, each in `1..=T`.
pub fn sequence_lengths(reference: &StateDict) -> Result<Option<Vec<usize>>, ImportError> {
    let shape = reference.get("input", "parity check")?.shape().to_vec();
    let (n, t) = match shape[..] {
        [n, t, _] => (n, t),
        _ => (0, 0),
    };
    sequence_lengths_of(reference, n, t)
}

/// The file's per-sequence `lengths` when it has them: `[n]` integers, each in `1..=t`.
fn sequence_lengths_of(
    reference: &StateDict,
    n: usize,
    t: usize,
) -> Result<Option<Vec<usize>>, ImportError> {
    let Some(tensor) = reference.tensors.get("lengths") else {
        return Ok(None);
    };
    let HostTensor::Int { shape, values } = tensor else {
        return Err(ImportError::Dtype {
            path: reference.source.clone(),
            name: "lengths".into(),
            dtype: "a float tensor".into(),
            expected: "int64 (torch.long), as pack_padded_sequence takes",
        });
    };
    if shape[..] != [n] {
        return Err(ImportError::Shape {
            path: reference.source.clone(),
            name: "lengths".into(),
            expected: format!("[{n}]"),
            found: shape.clone(),
            why: "one length per sequence of `input`".into(),
        });
    }
    values
        .iter()
        .enumerate()
        .map(|(row, &length)| match usize::try_from(length) {
            Ok(length) if (1..=t).contains(&length) => Ok(length),
            _ => Err(ImportError::Value {
                path: reference.source.clone(),
                name: "lengths".into(),
                problem: format!(
                    "gives sequence {row} the length {length}; each length must lie in 1..={t} (the time axis of `input`)"
                ),
            }),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn max_abs_diff<B: burn::tensor::backend::Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
    (a - b).abs().max().into_scalar().elem::<f32>()
}

fn input_shape_error(reference: &StateDict, found: &[usize], input_size: usize) -> ImportError {
    ImportError::Shape {
        path: reference.source.clone(),
        name: "input".into(),
        expected: format!("[N, T, {input_size}]"),
        found: found.to_vec(),
        why: "a batch of sequences with the model's input size".into(),
    }
}
