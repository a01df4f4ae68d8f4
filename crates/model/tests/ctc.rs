//! The CTC loss and decoders against brute force: every path of a few steps enumerated.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData, activation::log_softmax};
use model::ctc::{Ctc, beam_search, ctc_loss, forward_backward, greedy};

type B = Autodiff<NdArray>;

/// Deterministic log-softmax rows `[steps, classes]`.
fn log_probs(steps: usize, classes: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(steps * classes);
    for _ in 0..steps {
        let logits: Vec<f64> = (0..classes)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 10_000) as f64 / 2_000.0 - 2.5
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        out.extend(logits.iter().map(|l| (l - lse) as f32));
    }
    out
}

/// The labeling a path gives: repeats merged, blanks removed.
fn collapse(path: &[usize], blank: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut previous = None;
    for &c in path {
        if c != blank && previous != Some(c) {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

/// Every path of `steps` steps over `classes` classes.
fn paths(steps: usize, classes: usize) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for _ in 0..steps {
        all = all
            .into_iter()
            .flat_map(|p| {
                (0..classes).map(move |c| {
                    let mut p = p.clone();
                    p.push(c);
                    p
                })
            })
            .collect();
    }
    all
}

/// Brute force: `-log p(target)` and PyTorch's gradient `exp(lp) - γ`.
fn brute_force(lp: &[f32], classes: usize, target: &[usize], blank: usize) -> (f64, Vec<f64>) {
    let steps = lp.len() / classes;
    let mut total = 0.0f64;
    let mut occupancy = vec![0.0f64; lp.len()];
    for path in paths(steps, classes) {
        if collapse(&path, blank) != target {
            continue;
        }
        let p: f64 = path
            .iter()
            .enumerate()
            .map(|(t, &c)| f64::from(lp[t * classes + c]))
            .sum::<f64>()
            .exp();
        total += p;
        for (t, &c) in path.iter().enumerate() {
            occupancy[t * classes + c] += p;
        }
    }
    let grad = lp
        .iter()
        .zip(&occupancy)
        .map(|(&l, &o)| f64::from(l).exp() - o / total)
        .collect();
    (-total.ln(), grad)
}

const CASES: [(usize, usize, &[usize]); 6] = [
    (4, 3, &[1, 2]),
    (5, 3, &[1, 1]),
    (3, 4, &[]),
    (5, 4, &[3, 1, 3]),
    (6, 3, &[2]),
    (4, 3, &[2, 2, 2]), // needs 5 steps: impossible
];

#[test]
fn losses_and_gradients_are_the_sum_over_every_alignment() {
    for (k, &(steps, classes, target)) in CASES.iter().enumerate() {
        let lp = log_probs(steps, classes, k as u64 + 1);
        let ctc = Ctc {
            blank: 0,
            zero_infinity: false,
        };
        let got = forward_backward(
            &lp,
            [1, steps, classes],
            &[target.to_vec()],
            &[steps],
            ctc,
            true,
        );
        let (loss, grad) = brute_force(&lp, classes, target, 0);
        if loss.is_infinite() {
            assert!(got.losses[0].is_infinite(), "case {k}: impossible target");
            assert!(
                got.grads.unwrap().iter().all(|&g| g == 0.0),
                "case {k}: zero gradient"
            );
            let zeroed = Ctc {
                zero_infinity: true,
                ..ctc
            };
            let got = forward_backward(
                &lp,
                [1, steps, classes],
                &[target.to_vec()],
                &[steps],
                zeroed,
                false,
            );
            assert_eq!(got.losses[0], 0.0);
            continue;
        }
        assert!(
            (got.losses[0] - loss).abs() < 1e-9 * loss.abs().max(1.0),
            "case {k}: {} vs {loss}",
            got.losses[0]
        );
        for (g, want) in got.grads.unwrap().iter().zip(&grad) {
            assert!(
                (f64::from(*g) - want).abs() < 1e-6,
                "case {k}: gradient {g} vs {want}"
            );
        }
    }
}

#[test]
fn input_lengths_cut_each_sequence_and_the_blank_can_be_any_class() {
    let (steps, classes) = (6, 4);
    let lp = log_probs(steps * 2, classes, 9);
    let targets = vec![vec![1, 3], vec![0, 0, 1]];
    let ctc = Ctc {
        blank: 2,
        zero_infinity: false,
    };
    let got = forward_backward(&lp, [2, steps, classes], &targets, &[6, 4], ctc, true);
    let grads = got.grads.unwrap();
    for (n, length) in [(0usize, 6usize), (1, 4)] {
        let own = &lp[n * steps * classes..][..length * classes];
        let (loss, grad) = brute_force(own, classes, &targets[n], 2);
        assert!((got.losses[n] - loss).abs() < 1e-9 * loss.max(1.0));
        let ours = &grads[n * steps * classes..][..steps * classes];
        for (t, row) in ours.chunks(classes).enumerate() {
            for (c, &g) in row.iter().enumerate() {
                let want = if t < length {
                    grad[t * classes + c]
                } else {
                    0.0
                };
                assert!((f64::from(g) - want).abs() < 1e-6, "sequence {n} step {t}");
            }
        }
    }
}

/// Through a log-softmax, on an autodiff backend: the value is PyTorch's mean (each loss over its
/// target's length, then over the batch) and the logits' gradient is `(softmax - γ) / (N·len)`.
#[test]
fn the_loss_joins_the_graph_with_its_gradient() {
    let device = Default::default();
    let (batch, steps, classes) = (2, 5, 4);
    let raw = log_probs(batch * steps, classes, 3);
    let logits = Tensor::<B, 3>::from_data(TensorData::new(raw, [batch, steps, classes]), &device)
        .require_grad();
    let lp = log_softmax(logits.clone(), 2);
    let host: Vec<f32> = lp.clone().into_data().into_vec().unwrap();
    let targets = vec![vec![1, 2], vec![3]];
    let ctc = Ctc {
        blank: 0,
        zero_infinity: false,
    };
    let loss = ctc_loss(lp, &targets, &[5, 3], ctc);
    let grads = loss.backward();
    let value = f64::from(loss.into_scalar());
    let mut want = 0.0;
    let mut want_grad = vec![0.0f64; host.len()];
    for (n, length) in [(0usize, 5usize), (1, 3)] {
        let own = &host[n * steps * classes..][..length * classes];
        let (l, g) = brute_force(own, classes, &targets[n], 0);
        let weight = 1.0 / (batch as f64 * targets[n].len() as f64);
        want += l * weight;
        for (i, g) in g.iter().enumerate() {
            want_grad[n * steps * classes + i] = g * weight;
        }
    }
    assert!((value - want).abs() < 1e-6, "{value} vs {want}");
    let got: Vec<f32> = logits.grad(&grads).unwrap().into_data().into_vec().unwrap();
    for (g, w) in got.iter().zip(&want_grad) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "{g} vs {w}");
    }
}

#[test]
fn greedy_merges_repeats_and_drops_blanks() {
    // Best classes per step: 1 1 0 1 2 2 0.
    let best = [1usize, 1, 0, 1, 2, 2, 0];
    let classes = 3;
    let mut lp = vec![-5.0f32; best.len() * classes];
    for (t, &c) in best.iter().enumerate() {
        lp[t * classes + c] = -0.1;
    }
    let h = greedy(&lp, classes, 0);
    assert_eq!(h.tokens, [1, 1, 2]);
    assert!((h.log_prob - (-0.1f32 as f64) * 7.0).abs() < 1e-6);
}

#[test]
fn a_wide_beam_finds_the_most_probable_labeling() {
    for seed in 1..6 {
        let (steps, classes) = (4, 3);
        let lp = log_probs(steps, classes, seed);
        // Every labeling's probability, by brute force.
        let mut by_labeling: std::collections::BTreeMap<Vec<usize>, f64> = Default::default();
        for path in paths(steps, classes) {
            let p: f64 = path
                .iter()
                .enumerate()
                .map(|(t, &c)| f64::from(lp[t * classes + c]))
                .sum::<f64>()
                .exp();
            *by_labeling.entry(collapse(&path, 0)).or_default() += p;
        }
        let mut ranked: Vec<(Vec<usize>, f64)> = by_labeling.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let found = beam_search(&lp, classes, 0, 1000, 3);
        assert_eq!(found.len(), 3);
        for (h, (labeling, p)) in found.iter().zip(&ranked) {
            assert_eq!(&h.tokens, labeling, "seed {seed}");
            assert!((h.log_prob - p.ln()).abs() < 1e-9, "seed {seed}");
        }
        // A beam of one keeps a single prefix; it never does better than the best labeling.
        let narrow = beam_search(&lp, classes, 0, 1, 1);
        assert!(narrow[0].log_prob <= ranked[0].1.ln() + 1e-12);
    }
}

/// PyTorch's `nn.CTCLoss` on the repository's fixtures (`tests/fixtures/ctc-*.safetensors`), on both
/// CPU backends: the loss, its gradient, and a bidirectional LSTM transcriber's parameter gradients.
#[test]
fn ctc_matches_pytorch() {
    use model::parity::{check_ctc_loss, check_ctc_model};
    use model::pytorch::StateDict;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    for (file, model_file) in [
        ("ctc-loss-mean.safetensors", false),
        ("ctc-loss-zero-infinity.safetensors", false),
        ("ctc-bilstm.safetensors", true),
    ] {
        let reference = StateDict::read(dir.join(file)).unwrap();
        let check_ndarray = if model_file {
            check_ctc_model::<B>(&reference, &Default::default())
        } else {
            check_ctc_loss::<B>(&reference, &Default::default())
        };
        let report = check_ndarray.unwrap();
        assert!(report.passes(), "ndarray {file}: {report:?}");
        type F = Autodiff<burn::backend::Flex>;
        let report = if model_file {
            check_ctc_model::<F>(&reference, &Default::default())
        } else {
            check_ctc_loss::<F>(&reference, &Default::default())
        }
        .unwrap();
        assert!(report.passes(), "flex {file}: {report:?}");
    }
}
