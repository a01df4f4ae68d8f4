//! Bidirectional stacks and dropout between layers: shapes, what each direction reads, PyTorch parity
//! and import/export of `*_reverse` state_dicts, records, and dropout only while training.

use crate::common;

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module};
use burn::tensor::{Distribution, Tensor};
use model::parity::{self, AFTER_STEPS_TOLERANCE, LOGITS_TOLERANCE};
use model::pytorch::StateDict;
use model::{Cell, ModelConfig, RecordError};

type B = NdArray;

fn bidirectional(cell: Cell, input: usize, hidden: usize, layers: usize) -> ModelConfig {
    ModelConfig::new(input, hidden, layers, 4)
        .with_cell(cell)
        .with_bidirectional(true)
}

fn random_input(shape: [usize; 3]) -> Tensor<B, 3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

#[test]
fn every_level_holds_two_directions_and_the_head_reads_both() {
    let device = Default::default();
    for cell in Cell::ALL {
        let config = bidirectional(cell, 3, 5, 2);
        let model = config.init::<B>(&device).unwrap();
        assert_eq!(model.rnn.layers.len(), 4, "{cell}");
        let inputs: Vec<usize> = model.rnn.layers.iter().map(|l| l.input_size()).collect();
        assert_eq!(
            inputs,
            [3, 3, 10, 10],
            "{cell}: level 1 reads both directions"
        );
        assert_eq!(model.fc.weight.dims(), [10, 4]);
        let input = random_input([2, 6, 3]);
        assert_eq!(model.forward(input.clone()).dims(), [2, 4]);
        assert_eq!(model.forward_per_step(input).dims(), [2, 6, 4]);
        assert_eq!(model.config(), config);
    }
}

#[test]
fn the_reverse_direction_reads_the_sequence_backwards() {
    // One level: the head reads [forward final state, reverse final state], and the reverse layer's
    // final state is that of running it over the time-flipped input.
    let device = Default::default();
    for cell in Cell::ALL {
        let model = bidirectional(cell, 3, 5, 1).init::<B>(&device).unwrap();
        let input = random_input([4, 7, 3]);
        let (_, ahead) = model.rnn.layers[0].forward(input.clone(), None, false);
        let (_, behind) = model.rnn.layers[1].forward(input.clone().flip([1]), None, false);
        let expected = model.fc.forward(recurrent_ops::join::cat(
            vec![ahead.hidden, behind.hidden],
            1,
        ));
        model
            .forward(input.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        // Reversing the input swaps what the two directions see, so the output changes.
        let flipped = model.forward(input.clone().flip([1]));
        let diff = (flipped - model.forward(input)).abs().max().into_scalar();
        assert!(
            diff > 1e-4,
            "{cell}: a bidirectional model ignored the order"
        );
    }
}

#[test]
fn bidirectional_fixtures_match_pytorch_for_lstm_gru_and_rnn() {
    let fixtures: Vec<_> = common::repo_fixtures()
        .into_iter()
        .map(|path| (StateDict::read(&path).unwrap(), path))
        .filter(|(dict, _)| dict.model_config().unwrap().bidirectional)
        .collect();
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        assert!(
            fixtures
                .iter()
                .any(|(d, _)| d.model_config().unwrap().cell == cell),
            "no bidirectional {cell} fixture in tests/fixtures"
        );
    }
    assert!(
        fixtures
            .iter()
            .any(|(d, _)| d.model_config().unwrap().num_layers >= 2)
    );
    for_each_backend!(|name, device| {
        for (reference, path) in &fixtures {
            let report = parity::check::<B>(reference, &device)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", path.display()));
            assert!(
                report.logits_max_abs_diff <= LOGITS_TOLERANCE
                    && report.after_2_steps_max_abs_diff <= AFTER_STEPS_TOLERANCE,
                "{name} {}: {report:?}",
                path.display()
            );
        }
    });
}

#[test]
fn export_writes_reverse_tensors_that_import_back() {
    let device = Default::default();
    let reference = StateDict::read(
        common::repo_root().join("tests/fixtures/pytorch-bi-lstm-h6-l2-in4.safetensors"),
    )
    .unwrap();
    let model = reference.to_classifier::<B>(&device).unwrap();
    let exported = StateDict::from_classifier(&model);
    assert_eq!(
        exported.metadata.get("bidirectional").map(String::as_str),
        Some("true")
    );
    // Every tensor PyTorch's state_dict has, under the same name, with the same values.
    for (name, tensor) in &exported.tensors {
        assert_eq!(Some(tensor), reference.tensors.get(name), "{name}");
    }
    let weights = reference
        .tensors
        .keys()
        .filter(|name| name.starts_with("lstm.") || name.starts_with("fc."))
        .count();
    assert_eq!(exported.tensors.len(), weights);
    assert!(exported.tensors.contains_key("lstm.weight_hh_l1_reverse"));
    let back = StateDict::from_bytes(&exported.to_bytes().unwrap(), "roundtrip")
        .unwrap()
        .to_classifier::<B>(&device)
        .unwrap();
    let input = random_input([2, 5, 4]);
    model
        .forward(input.clone())
        .into_data()
        .assert_eq(&back.forward(input).into_data(), true);
}

#[test]
fn a_missing_reverse_tensor_is_named() {
    let mut reference = StateDict::read(
        common::repo_root().join("tests/fixtures/pytorch-bi-gru-h5-l2-in3-c4.safetensors"),
    )
    .unwrap();
    reference.tensors.remove("rnn.weight_hh_l1_reverse");
    let err = reference
        .to_classifier::<B>(&Default::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("rnn.weight_hh_l1_reverse"),
        "{err}"
    );
}

#[test]
fn records_round_trip_and_direction_mismatches_are_errors() {
    let device = Default::default();
    let dir = std::env::temp_dir().join(format!("model-bidirectional-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = bidirectional(Cell::Gru, 3, 4, 2);
    let model = config.init::<B>(&device).unwrap();
    model.save(dir.join("model")).unwrap();
    let file = dir.join("model.mpk");
    let loaded = config.load::<B>(&file, &device).unwrap();
    let input = random_input([2, 5, 3]);
    model
        .forward(input.clone())
        .into_data()
        .assert_eq(&loaded.forward(input).into_data(), true);
    let one_way = config.clone().with_bidirectional(false);
    match one_way.load::<B>(&file, &device) {
        Err(RecordError::Mismatch { what, .. }) => {
            assert!(what.contains("number of recurrent layers"), "{what}")
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn dropout_acts_between_levels_while_training_only() {
    type A = Autodiff<NdArray>;
    let device = Default::default();
    let config = ModelConfig::new(3, 8, 3, 4).with_dropout(0.5);
    let model = config.init::<A>(&device).unwrap();
    assert_eq!(model.config(), config);
    let input = Tensor::<A, 3>::random([6, 5, 3], Distribution::Normal(0.0, 1.0), &device);
    let a = model.forward(input.clone());
    let b = model.forward(input.clone());
    let diff = (a - b).abs().max().into_scalar();
    assert!(
        diff > 1e-4,
        "two training passes drew the same dropout masks"
    );
    // Without autodiff (evaluation), dropout is the identity: the model without dropout.
    let inner = model.valid();
    let plain = ModelConfig::new(3, 8, 3, 4)
        .init::<NdArray>(&device)
        .unwrap()
        .load_record(inner.clone().into_record());
    inner
        .forward(input.clone().inner())
        .into_data()
        .assert_eq(&plain.forward(input.inner()).into_data(), true);
}

#[test]
fn one_level_ignores_dropout() {
    // PyTorch applies dropout between layers only: a single level has nothing to drop.
    type A = Autodiff<NdArray>;
    let device = Default::default();
    let model = ModelConfig::new(3, 8, 1, 4)
        .with_dropout(0.5)
        .init::<A>(&device)
        .unwrap();
    let input = Tensor::<A, 3>::random([6, 5, 3], Distribution::Normal(0.0, 1.0), &device);
    model
        .forward(input.clone())
        .into_data()
        .assert_eq(&model.forward(input).into_data(), true);
}

#[test]
fn invalid_dropout_is_refused() {
    for p in [-0.1, 1.0, f64::NAN] {
        let err = ModelConfig::new(3, 8, 2, 4)
            .with_dropout(p)
            .init::<B>(&Default::default())
            .unwrap_err();
        assert_eq!(err.field, "dropout");
    }
}
