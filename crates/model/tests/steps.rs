//! Token inputs, a prediction at every step, and the state passed in and out: a window split in two
//! with the state carried gives what the whole window gives, so does one step at a time, and the
//! loss leaves ignored positions out of both its sum and its count.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use model::{
    Cell, Head, Input, ModelConfig, RecurrentState, SequenceModel, cross_entropy,
    cross_entropy_ignoring,
};

type B = NdArray;

fn language_model(cell: Cell, bidirectional: bool) -> SequenceModel<B> {
    ModelConfig::new(5, 7, 2, 11)
        .with_cell(cell)
        .with_vocab_size(Some(11))
        .with_head(Head::EveryStep)
        .with_bidirectional(bidirectional)
        .init::<B>(&Default::default())
        .unwrap()
}

fn tokens(ids: &[i64], batch: usize) -> Tensor<B, 2, Int> {
    let steps = ids.len() / batch;
    Tensor::from_data(
        TensorData::new(ids.to_vec(), [batch, steps]),
        &Default::default(),
    )
}

fn max_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

fn state_diff(a: &[RecurrentState<B>], b: &[RecurrentState<B>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let cell = match (&a.cell, &b.cell) {
                (Some(x), Some(y)) => max_diff(x.clone(), y.clone()),
                (None, None) => 0.0,
                _ => panic!("one state has a cell state, the other not"),
            };
            max_diff(a.hidden.clone(), b.hidden.clone()).max(cell)
        })
        .fold(0.0, f32::max)
}

/// Three streams of 12 tokens, row-major.
fn ids() -> Vec<i64> {
    (0..36).map(|i| (i * 7 + 3) % 11).collect()
}

#[test]
fn a_window_split_in_two_with_the_state_carried_gives_the_whole_window() {
    for cell in Cell::ALL {
        let model = language_model(cell, false);
        let ids = ids();
        let (whole, whole_state) = model.forward_steps(Input::Tokens(tokens(&ids, 3)), None);
        assert_eq!(whole.dims(), [3, 12, 11]);
        let split = |from: usize, to: usize| -> Vec<i64> {
            (0..3)
                .flat_map(|b| ids[b * 12 + from..b * 12 + to].to_vec())
                .collect()
        };
        let (first, state) = model.forward_steps(Input::Tokens(tokens(&split(0, 5), 3)), None);
        let (second, state) =
            model.forward_steps(Input::Tokens(tokens(&split(5, 12), 3)), Some(state));
        let joined = recurrent_ops::join::cat(vec![first, second], 1);
        assert!(
            max_diff(joined, whole.clone()) < 1e-6,
            "{cell}: logits differ"
        );
        assert!(
            state_diff(&state, &whole_state) < 1e-6,
            "{cell}: final states differ"
        );

        // One step at a time, as generation runs.
        let mut state = None;
        let mut steps = Vec::new();
        for t in 0..12 {
            let (logits, next) =
                model.forward_steps(Input::Tokens(tokens(&split(t, t + 1), 3)), state);
            steps.push(logits);
            state = Some(next);
        }
        let stepped = recurrent_ops::join::cat(steps, 1);
        assert!(
            max_diff(stepped, whole) < 1e-6,
            "{cell}: one step at a time differs"
        );
        assert!(
            state_diff(&state.unwrap(), &whole_state) < 1e-6,
            "{cell}: stepped final states differ"
        );
    }
}

#[test]
fn the_initial_state_is_the_one_given_in_every_layer_and_direction() {
    let model = language_model(Cell::Lstm, true);
    let device = Default::default();
    let ids = ids();
    let (_, zero_start) = model.forward_steps(Input::Tokens(tokens(&ids, 3)), None);
    assert_eq!(zero_start.len(), 4, "two levels, two directions");
    let zeros: Vec<RecurrentState<B>> = (0..4)
        .map(|_| RecurrentState {
            hidden: Tensor::zeros([3, 7], &device),
            cell: Some(Tensor::zeros([3, 7], &device)),
        })
        .collect();
    let (_, explicit) = model.forward_steps(Input::Tokens(tokens(&ids, 3)), Some(zeros));
    assert!(state_diff(&zero_start, &explicit) < 1e-7);
    // Another start gives other states.
    let (_, other) = model.forward_steps(Input::Tokens(tokens(&ids, 3)), Some(explicit));
    assert!(state_diff(&zero_start, &other) > 1e-4);
}

#[test]
fn gradients_reach_the_initial_state() {
    type A = Autodiff<NdArray>;
    let device = Default::default();
    let model = ModelConfig::new(5, 7, 2, 11)
        .with_vocab_size(Some(11))
        .with_head(Head::EveryStep)
        .init::<A>(&device)
        .unwrap();
    let state: Vec<RecurrentState<A>> = (0..2)
        .map(|_| RecurrentState {
            hidden: Tensor::random([3, 7], Distribution::Default, &device).require_grad(),
            cell: Some(Tensor::random([3, 7], Distribution::Default, &device).require_grad()),
        })
        .collect();
    let ids = Tensor::<A, 2, Int>::from_data(TensorData::new(ids(), [3, 12]), &device);
    let (logits, _) = model.forward_steps(Input::Tokens(ids), Some(state.clone()));
    let grads = logits.sum().backward();
    for layer in &state {
        let g = layer.hidden.grad(&grads).expect("a gradient for h0");
        assert!(g.abs().sum().into_scalar() > 0.0);
        assert!(
            layer.cell.as_ref().unwrap().grad(&grads).is_some(),
            "a gradient for c0"
        );
    }
}

#[test]
fn the_loss_leaves_ignored_positions_out_of_its_sum_and_count() {
    let device = Default::default();
    let logits = Tensor::<B, 2>::random([6, 4], Distribution::Default, &device);
    let targets = [1i64, -1, 2, 3, -1, 0];
    let all = Tensor::<B, 1, Int>::from_data(TensorData::new(targets.to_vec(), [6]), &device);
    let kept_rows: Vec<usize> = (0..6).filter(|&i| targets[i] != -1).collect();
    let kept = logits.clone().select(
        0,
        Tensor::<B, 1, Int>::from_data(
            TensorData::new(kept_rows.iter().map(|&i| i as i64).collect::<Vec<_>>(), [4]),
            &device,
        ),
    );
    let kept_targets =
        Tensor::<B, 1, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 0], [4]), &device);
    let expected = cross_entropy(kept, kept_targets).into_scalar();
    let got = cross_entropy_ignoring(logits.clone(), all, -1).into_scalar();
    assert!((expected - got).abs() < 1e-6, "{expected} vs {got}");
    let none = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![-1i64; 6], [6]), &device);
    assert_eq!(cross_entropy_ignoring(logits, none, -1).into_scalar(), 0.0);
}

#[test]
fn token_inputs_need_an_embedding_and_the_config_says_so() {
    let error = ModelConfig::new(5, 7, 1, 3)
        .with_vocab_size(Some(0))
        .validate()
        .unwrap_err();
    assert_eq!(error.field, "vocab_size");
    let error = ModelConfig::new(5, 7, 1, 3)
        .with_input_dropout(0.5)
        .validate()
        .unwrap_err();
    assert_eq!(error.field, "input_dropout");
    let model = language_model(Cell::Gru, false);
    assert_eq!(model.config().vocab_size, Some(11));
    assert_eq!(model.config().head, Head::EveryStep);
    let record_round_trip = model.config().init::<B>(&Default::default()).unwrap();
    assert!(record_round_trip.embedding.is_some());
}
