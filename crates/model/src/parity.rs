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

use burn::module::{AutodiffModule, Module};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, RmsPropConfig, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor};

use recurrent_ops::join;

use crate::pytorch::{HostTensor, ImportError, StateDict};
use crate::{RecurrentClassifier, cross_entropy};

mod ctc;
pub use ctc::{CTC_TOLERANCE, CtcReport, check_ctc_loss, check_ctc_model, max_abs_diff};

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
pub fn check<B: AutodiffBackend>(
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
    let logits_max_abs_diff = tensor_max_abs_diff(logits.clone(), expected_logits);
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
    let after_2_steps_max_abs_diff = tensor_max_abs_diff(after, expected_after.inner());

    Ok(ParityReport {
        logits_max_abs_diff,
        after_2_steps_max_abs_diff,
        loss_abs_diff,
    })
}

/// Two optimizer steps on the mean cross-entropy of one batch, as the reference files record them.
fn two_steps<B: AutodiffBackend, O: Optimizer<RecurrentClassifier<B>, B>>(
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

fn tensor_max_abs_diff<B: burn::tensor::backend::Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f32 {
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

/// Largest accepted |Burn − PyTorch| of a language model's logits, loss and every gradient, over
/// two windows with the state carried (measured: see the README's parity section).
pub const LANGUAGE_MODEL_TOLERANCE: f32 = 1e-6;

/// How far Burn is from PyTorch on a language-model reference file (`format: lm-parity-1`): an
/// `encoder` / `rnn` / `decoder` state_dict and, per window `w` (0, 1), `window{w}.inputs`,
/// `.targets` (`-1` ignored), `.logits`, `.loss`, `.h_n` (`.c_n`) and `.grad.<name>` of every
/// parameter, the second window started from the first's final state, detached.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageModelReport {
    /// max |Δ| of the logits, both windows.
    pub logits_max_abs_diff: f32,
    /// max |Δ| of the loss, both windows.
    pub loss_max_abs_diff: f32,
    /// max |Δ| of the final states (h, and c for the LSTM), both windows.
    pub state_max_abs_diff: f32,
    /// max |Δ| over every parameter's gradient, both windows, and the parameter where it is.
    pub grad_max_abs_diff: f32,
    /// The parameter of the largest gradient difference.
    pub worst_grad: String,
}

impl LanguageModelReport {
    /// Whether every difference is within [`LANGUAGE_MODEL_TOLERANCE`]. A NaN fails.
    pub fn passes(&self) -> bool {
        [
            self.logits_max_abs_diff,
            self.loss_max_abs_diff,
            self.state_max_abs_diff,
            self.grad_max_abs_diff,
        ]
        .iter()
        .all(|d| *d <= LANGUAGE_MODEL_TOLERANCE)
    }
}

/// Replaces every parameter by its gradient (zeros where it has none), so that a model's gradients
/// export with the parameters' PyTorch names and layouts.
struct GradientsOf<'a>(&'a GradientsParams);

impl<B: burn::tensor::backend::Backend> burn::module::ModuleMapper<B> for GradientsOf<'_> {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<B, D>>,
    ) -> burn::module::Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let grad = self
            .0
            .get::<B, D>(id)
            .unwrap_or_else(|| tensor.zeros_like());
        burn::module::Param::from_mapped_value(id, grad, mapper)
    }
}

/// Runs a language-model reference file's two windows on backend `B` (the first from zeros, the
/// second from the first's final state, detached), each with its own backward, and reports the
/// differences from PyTorch's recorded numbers.
pub fn check_language_model<B: AutodiffBackend>(
    reference: &StateDict,
    device: &B::Device,
) -> Result<LanguageModelReport, ImportError> {
    use crate::{Input, RecurrentState};
    let model: RecurrentClassifier<B> = reference.to_classifier(device)?;
    let config = model.config();
    let vocab = config.num_classes;
    let mut report = LanguageModelReport {
        logits_max_abs_diff: 0.0,
        loss_max_abs_diff: 0.0,
        state_max_abs_diff: 0.0,
        grad_max_abs_diff: 0.0,
        worst_grad: String::new(),
    };
    let mut state: Option<Vec<RecurrentState<B>>> = None;
    for w in 0..2 {
        let name = |what: &str| format!("window{w}.{what}");
        let ints = |what: &str| -> Result<(Vec<usize>, Vec<i64>), ImportError> {
            match reference.get(&name(what), "language-model parity")? {
                HostTensor::Int { shape, values } if shape.len() == 2 => {
                    Ok((shape.clone(), values.clone()))
                }
                other => Err(ImportError::Shape {
                    path: reference.source.clone(),
                    name: name(what),
                    expected: "[streams, steps] integers".into(),
                    found: other.shape().to_vec(),
                    why: "token ids of one window".into(),
                }),
            }
        };
        let (shape, inputs) = ints("inputs")?;
        let (_, targets) = ints("targets")?;
        let (streams, steps) = (shape[0], shape[1]);
        let tensor = |values: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(
                burn::tensor::TensorData::new(values, [streams, steps]),
                device,
            )
        };
        let (logits, next) = model.forward_steps(Input::Tokens(tensor(inputs)), state.take());
        let expected: Tensor<B, 3> = reference.float_tensor(
            &name("logits"),
            [streams, steps, vocab],
            "the window's logits",
            device,
        )?;
        let diff = (logits.clone() - expected)
            .abs()
            .max()
            .into_scalar()
            .elem::<f32>();
        report.logits_max_abs_diff = report.logits_max_abs_diff.max(diff);
        let rows = streams * steps;
        let loss = crate::cross_entropy_ignoring(
            logits.reshape([rows, vocab]),
            tensor(targets).reshape([rows]),
            -1,
        );
        let (_, expected_loss) = reference.float(&name("loss"), &[1], "the window's loss")?;
        let diff = (loss.clone().into_scalar().elem::<f32>() - expected_loss[0]).abs();
        report.loss_max_abs_diff = report.loss_max_abs_diff.max(diff);
        // Final states: PyTorch's h_n is [layers, streams, H].
        let layers = next.len();
        let h = config.hidden_size;
        let mut stacked =
            |what: &str, pick: &dyn Fn(&RecurrentState<B>) -> Option<Tensor<B, 2>>| {
                if !reference.tensors.contains_key(&name(what)) {
                    return Ok::<(), ImportError>(());
                }
                let expected: Tensor<B, 3> = reference.float_tensor(
                    &name(what),
                    [layers, streams, h],
                    "the window's final state",
                    device,
                )?;
                let ours: Tensor<B, 3> = join::stack(next.iter().filter_map(pick).collect(), 0);
                let diff = (ours - expected).abs().max().into_scalar().elem::<f32>();
                report.state_max_abs_diff = report.state_max_abs_diff.max(diff);
                Ok(())
            };
        stacked("h_n", &|s| Some(s.hidden.clone()))?;
        stacked("c_n", &|s| s.cell.clone())?;
        state = Some(next.into_iter().map(RecurrentState::detach).collect());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let as_model = model.valid().map(&mut GradientsOf(&grads));
        let ours = StateDict::from_classifier(&as_model);
        for (param, tensor) in &ours.tensors {
            let HostTensor::Float { values, .. } = tensor else {
                continue;
            };
            let (_, expected) = reference.float(
                &name(&format!("grad.{param}")),
                tensor.shape(),
                "a parameter's gradient",
            )?;
            let diff = values
                .iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            if diff > report.grad_max_abs_diff || diff.is_nan() {
                report.grad_max_abs_diff = diff;
                report.worst_grad = format!("window {w} {param}");
            }
        }
    }
    Ok(report)
}
