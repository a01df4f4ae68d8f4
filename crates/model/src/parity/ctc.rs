//! CTC against PyTorch: `nn.CTCLoss` on given log-probabilities (`ctc-loss-1` files) and a small
//! bidirectional LSTM transcriber trained through it (`ctc-model-1`), from
//! `tests/fixtures/make_ctc_fixtures.py`.

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

use super::GradientsOf;
use crate::ctc::{Ctc, ctc_loss};
use crate::pytorch::{HostTensor, ImportError, StateDict};
use crate::{Input, log_softmax};

/// Largest absolute difference allowed for the loss, the log-probabilities and every gradient (measured: 3.2e-7 at most). The
/// loss is computed in f64 here and in f32 by PyTorch.
pub const CTC_TOLERANCE: f32 = 1e-6;

/// Largest absolute differences from a CTC reference file.
#[derive(Debug, Clone, Default)]
pub struct CtcReport {
    /// The mean loss.
    pub loss_abs_diff: f32,
    /// The model's log-probabilities (model files only; 0 for loss files).
    pub log_probs_max_abs_diff: f32,
    /// The gradient with respect to the log-probabilities (loss files) or to the parameters (model
    /// files).
    pub grad_max_abs_diff: f32,
    /// The gradient that differs most.
    pub worst_grad: String,
}

impl CtcReport {
    /// Whether every difference is within [`CTC_TOLERANCE`].
    pub fn passes(&self) -> bool {
        [
            self.loss_abs_diff,
            self.log_probs_max_abs_diff,
            self.grad_max_abs_diff,
        ]
        .iter()
        .all(|d| *d <= CTC_TOLERANCE)
    }
}

/// The integers of a tensor of rank `rank`, with its shape.
fn ints(
    reference: &StateDict,
    name: &str,
    rank: usize,
) -> Result<(Vec<usize>, Vec<i64>), ImportError> {
    match reference.get(name, "CTC parity")? {
        HostTensor::Int { shape, values } if shape.len() == rank => {
            Ok((shape.clone(), values.clone()))
        }
        other => Err(ImportError::Shape {
            path: reference.source.clone(),
            name: name.to_string(),
            expected: format!("integers of rank {rank}"),
            found: other.shape().to_vec(),
            why: "CTC targets and lengths".into(),
        }),
    }
}

/// A file's CTC options, its targets (each cut to its length) and its input lengths.
struct Targets {
    ctc: Ctc,
    targets: Vec<Vec<usize>>,
    input_lengths: Vec<usize>,
}

fn targets(reference: &StateDict) -> Result<Targets, ImportError> {
    let (shape, padded) = ints(reference, "targets", 2)?;
    let (_, target_lengths) = ints(reference, "target_lengths", 1)?;
    let (_, input_lengths) = ints(reference, "input_lengths", 1)?;
    let width = shape[1];
    let targets = target_lengths
        .iter()
        .enumerate()
        .map(|(n, &len)| {
            padded[n * width..][..len as usize]
                .iter()
                .map(|&t| t as usize)
                .collect()
        })
        .collect();
    let ctc = Ctc {
        blank: reference.metadata_f64("blank")? as usize,
        zero_infinity: reference.metadata.get("zero_infinity").map(String::as_str) == Some("true"),
    };
    let input_lengths = input_lengths.iter().map(|&l| l as usize).collect();
    Ok(Targets {
        ctc,
        targets,
        input_lengths,
    })
}

/// The largest absolute difference between two slices: NaN if either holds a NaN where the other
/// differs, infinite if their lengths differ, and 0 where equal infinities meet.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() })
        .fold(0.0f32, |m, d| if d.is_nan() { f32::NAN } else { m.max(d) })
}

/// `[T, N, C]` values as `[N, T, C]`.
fn batch_first(values: &[f32], [t, n, c]: [usize; 3]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for step in 0..t {
        for b in 0..n {
            out[(b * t + step) * c..][..c].copy_from_slice(&values[(step * n + b) * c..][..c]);
        }
    }
    out
}

/// A `ctc-loss-1` file: the loss of its `log_probs` `[T, N, C]` and the gradient with respect to them.
pub fn check_ctc_loss<B: AutodiffBackend>(
    reference: &StateDict,
    device: &B::Device,
) -> Result<CtcReport, ImportError> {
    let Targets {
        ctc,
        targets,
        input_lengths,
    } = targets(reference)?;
    let shape = reference.get("log_probs", "CTC parity")?.shape().to_vec();
    let &[t, n, c] = shape.as_slice() else {
        return Err(ImportError::Shape {
            path: reference.source.clone(),
            name: "log_probs".into(),
            expected: "[T, N, C]".into(),
            found: shape,
            why: "log-probabilities, time first".into(),
        });
    };
    let (_, values) = reference.float("log_probs", &[t, n, c], "log-probabilities")?;
    let log_probs = Tensor::<B, 3>::from_data(
        TensorData::new(batch_first(values, [t, n, c]), [n, t, c]),
        device,
    )
    .require_grad();
    let loss = ctc_loss(log_probs.clone(), &targets, &input_lengths, ctc);
    let grads = loss.backward();
    let (_, expected_loss) = reference.float("loss", &[], "the mean loss")?;
    let (_, expected_grad) = reference.float("grad", &[t, n, c], "the loss's gradient")?;
    let grad: Vec<f32> = log_probs
        .grad(&grads)
        .expect("log_probs is tracked")
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("floats");
    Ok(CtcReport {
        loss_abs_diff: max_abs_diff(&[loss.into_scalar().elem::<f32>()], expected_loss),
        log_probs_max_abs_diff: 0.0,
        grad_max_abs_diff: max_abs_diff(&grad, &batch_first(expected_grad, [t, n, c])),
        worst_grad: "log_probs".into(),
    })
}

/// A `ctc-model-1` file: its embedding → bidirectional LSTM → linear transcriber imported, run on
/// its padded `inputs` with their lengths, and the CTC loss's parameter gradients.
pub fn check_ctc_model<B: AutodiffBackend>(
    reference: &StateDict,
    device: &B::Device,
) -> Result<CtcReport, ImportError> {
    let Targets {
        ctc,
        targets,
        input_lengths,
    } = targets(reference)?;
    let model = reference
        .to_classifier::<B>(device)?
        .with_head(crate::Head::EveryStep);
    let (shape, inputs) = ints(reference, "inputs", 2)?;
    let (n, t) = (shape[0], shape[1]);
    let c = model.config().num_classes;
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, [n, t]), device);
    let logits = model.forward_steps_lengths(Input::Tokens(tokens), &input_lengths);
    let log_probs = log_softmax(logits, 2);
    // PyTorch's reference is zero past each length.
    let mask: Vec<f32> = (0..n * t)
        .flat_map(|i| {
            let keep = if i % t < input_lengths[i / t] {
                1.0
            } else {
                0.0
            };
            std::iter::repeat_n(keep, c)
        })
        .collect();
    let ours: Vec<f32> = log_probs
        .clone()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("floats");
    let ours: Vec<f32> = ours.iter().zip(&mask).map(|(v, m)| v * m).collect();
    let (_, expected) =
        reference.float("log_probs", &[t, n, c], "the model's log-probabilities")?;
    let mut report = CtcReport {
        log_probs_max_abs_diff: max_abs_diff(&ours, &batch_first(expected, [t, n, c])),
        ..CtcReport::default()
    };
    let loss = ctc_loss(log_probs, &targets, &input_lengths, ctc);
    let (_, expected_loss) = reference.float("loss", &[], "the mean loss")?;
    report.loss_abs_diff = max_abs_diff(&[loss.clone().into_scalar().elem::<f32>()], expected_loss);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let as_model = model.valid().map(&mut GradientsOf(&grads));
    for (param, tensor) in &StateDict::from_classifier(&as_model).tensors {
        let HostTensor::Float { values, .. } = tensor else {
            continue;
        };
        let (_, expected) = reference.float(
            &format!("grad.{param}"),
            tensor.shape(),
            "a parameter's gradient",
        )?;
        let diff = max_abs_diff(values, expected);
        if diff > report.grad_max_abs_diff || diff.is_nan() {
            report.grad_max_abs_diff = diff;
            report.worst_grad = param.clone();
        }
    }
    Ok(report)
}
