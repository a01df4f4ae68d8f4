//! Classifiers over padded batches of sequences of different lengths: each row's logits and per-step
//! logits equal those of the sequence run alone, unpadded (PyTorch's packed-sequence semantics), for
//! every cell, one to three levels, one and two directions; parameter gradients of the padded batch
//! equal the sum of the per-sequence ones; NaN in the padding changes nothing.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Tensor, TensorData};
use model::{Cell, ModelConfig, RecurrentClassifier};

use model::parity::max_abs_diff;

type B = Autodiff<NdArray>;

const TOLERANCE: f32 = 1e-5;

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Every recurrent parameter's gradient, in layer order.
fn parameter_grads(
    model: &RecurrentClassifier<B>,
    grads: &<B as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for layer in &model.rnn.layers {
        let w = layer.weights();
        for t in [w.weight_ih, w.weight_hh] {
            out.push(
                t.grad(grads)
                    .map(|g| g.into_data().to_vec().unwrap())
                    .unwrap(),
            );
        }
        for t in [w.bias_ih, w.bias_hh].into_iter().flatten() {
            out.push(
                t.grad(grads)
                    .map(|g| g.into_data().to_vec().unwrap())
                    .unwrap(),
            );
        }
    }
    out
}

#[test]
fn a_padded_batch_equals_each_sequence_alone() {
    let device = Default::default();
    let lengths = [7usize, 3, 9, 1, 9, 4];
    let (batch, time, features) = (lengths.len(), 9, 3);
    for cell in Cell::ALL {
        for (levels, bidirectional) in [(1, false), (2, true), (3, false), (1, true)] {
            let what = format!("{cell} levels {levels} bidirectional {bidirectional}");
            let model = ModelConfig::new(features, 5, levels, 4)
                .with_cell(cell)
                .with_bidirectional(bidirectional)
                .init::<B>(&device)
                .unwrap();
            let input: Tensor<B, 3> = Tensor::random(
                [batch, time, features],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            // NaN past every length.
            let mut padded = values(input.clone());
            for (b, &l) in lengths.iter().enumerate() {
                padded[(b * time + l) * features..(b + 1) * time * features].fill(f32::NAN);
            }
            let padded = Tensor::<B, 3>::from_data(
                TensorData::new(padded, [batch, time, features]),
                &device,
            );
            let probe: Tensor<B, 2> =
                Tensor::random([batch, 4], Distribution::Normal(0.0, 1.0), &device);

            let logits = model.forward_lengths(padded.clone(), Some(&lengths));
            let per_step = values(model.forward_per_step_lengths(padded, Some(&lengths)));
            let grads = (logits.clone() * probe.clone()).sum().backward();
            let batch_grads = parameter_grads(&model, &grads);
            let logits = values(logits);

            let mut alone_loss: Option<Tensor<B, 1>> = None;
            for (b, &l) in lengths.iter().enumerate() {
                let sequence = input.clone().slice([b..b + 1, 0..l]);
                let got = &logits[b * 4..(b + 1) * 4];
                let one = model.forward(sequence.clone());
                let want = values(one.clone());
                let diff = max_abs_diff(got, &want);
                assert!(
                    diff <= TOLERANCE,
                    "{what}: row {b} (length {l}) differs by {diff:e}"
                );
                let steps = values(model.forward_per_step(sequence));
                let row = &per_step[b * time * 4..][..l * 4];
                let diff = max_abs_diff(row, &steps);
                assert!(
                    diff <= TOLERANCE,
                    "{what}: row {b} per-step logits differ by {diff:e}"
                );
                let term = (one * probe.clone().narrow(0, b, 1)).sum();
                alone_loss = Some(match alone_loss {
                    Some(total) => total + term,
                    None => term,
                });
            }
            let grads = alone_loss.unwrap().backward();
            for (k, (got, want)) in batch_grads
                .iter()
                .zip(parameter_grads(&model, &grads))
                .enumerate()
            {
                let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let diff = max_abs_diff(got, &want);
                assert!(
                    diff <= TOLERANCE * scale.max(1e-3),
                    "{what}: gradient {k} differs by {diff:e} (largest {scale:e})"
                );
            }
        }
    }
}

#[test]
fn without_lengths_nothing_changes() {
    let device = Default::default();
    let model = ModelConfig::new(2, 4, 2, 3).init::<B>(&device).unwrap();
    let input: Tensor<B, 3> = Tensor::random([3, 5, 2], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(
        values(model.forward(input.clone())),
        values(model.forward_lengths(input.clone(), Some(&[5, 5, 5])))
    );
    assert_eq!(
        values(model.forward(input.clone())),
        values(model.forward_lengths(input, None))
    );
}
