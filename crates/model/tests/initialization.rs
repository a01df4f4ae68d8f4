//! Initialization options: `forget_bias` (the LSTM's forget gate opened, nothing else changed),
//! `recurrent_init: orthogonal` (each gate's recurrent block orthogonal) and `identity_gate`.

use crate::SEEDED;
use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use model::{Cell, ModelConfig, RecurrentClassifier, RecurrentInit, cross_entropy};

type B = NdArray;

fn values(param: &Param<Tensor<B, 1>>) -> Vec<f32> {
    param.val().into_data().to_vec::<f32>().unwrap()
}

fn seeded_init(config: &ModelConfig) -> RecurrentClassifier<B> {
    let device = Default::default();
    B::seed(&device, 7);
    config.init::<B>(&device).unwrap()
}

#[test]
fn only_the_forget_gate_bias_moves() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let hidden = 5;
    for cell in [Cell::Lstm, Cell::PeepholeLstm] {
        let config = ModelConfig::new(3, hidden, 2, 4).with_cell(cell);
        let plain = seeded_init(&config);
        let opened = seeded_init(&config.clone().with_forget_bias(1.0));
        for (k, (a, b)) in plain.rnn.layers.iter().zip(&opened.rnn.layers).enumerate() {
            let (drawn, shifted) = (
                values(a.bias_ih.as_ref().unwrap()),
                values(b.bias_ih.as_ref().unwrap()),
            );
            for (j, (d, s)) in drawn.iter().zip(&shifted).enumerate() {
                let expected = if (hidden..2 * hidden).contains(&j) {
                    d + 1.0
                } else {
                    *d
                };
                assert_eq!(
                    s.to_bits(),
                    expected.to_bits(),
                    "{cell} layer {k} bias_ih[{j}]"
                );
            }
            let same = |x: Tensor<B, 2>, y: Tensor<B, 2>| x.into_data() == y.into_data();
            assert!(
                same(a.weight_ih.val(), b.weight_ih.val()),
                "{cell} layer {k}"
            );
            assert!(
                same(a.weight_hh.val(), b.weight_hh.val()),
                "{cell} layer {k}"
            );
            assert_eq!(
                values(a.bias_hh.as_ref().unwrap()),
                values(b.bias_hh.as_ref().unwrap()),
                "{cell} layer {k}: bias_hh"
            );
            for (p, q) in [
                (&a.weight_ci, &b.weight_ci),
                (&a.weight_cf, &b.weight_cf),
                (&a.weight_co, &b.weight_co),
            ] {
                assert_eq!(p.as_ref().map(values), q.as_ref().map(values), "{cell}");
            }
        }
        assert_eq!(
            plain.fc.weight.val().into_data(),
            opened.fc.weight.val().into_data(),
            "{cell}: the head's draw follows the same stream"
        );
    }
}

#[test]
fn the_shifted_bias_is_a_trained_parameter() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    type A = Autodiff<B>;
    let device = Default::default();
    let model = ModelConfig::new(3, 4, 1, 2)
        .with_forget_bias(1.0)
        .init::<A>(&device)
        .unwrap();
    let input = Tensor::<A, 3>::random([6, 7, 3], Distribution::Normal(0.0, 1.0), &device);
    let targets =
        Tensor::<A, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 0, 1, 1, 0], [6]), &device);
    let grads = cross_entropy(model.forward(input), targets).backward();
    let bias = model.rnn.layers[0].bias_ih.as_ref().unwrap();
    let grad = bias
        .grad(&grads)
        .expect("the shifted bias_ih is a leaf with a gradient")
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(grad[4..8].iter().any(|g| *g != 0.0), "{grad:?}");
}

#[test]
fn forget_bias_needs_an_lstm_with_biases() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    for cell in [Cell::Gru, Cell::Rnn] {
        let err = ModelConfig::new(1, 8, 1, 10)
            .with_cell(cell)
            .with_forget_bias(1.0)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "forget_bias", "{cell}");
        assert!(err.to_string().contains("LSTM"), "{err}");
        ModelConfig::new(1, 8, 1, 10)
            .with_cell(cell)
            .validate()
            .unwrap();
    }
    let err = ModelConfig::new(1, 8, 1, 10)
        .with_bias(false)
        .with_forget_bias(1.0)
        .validate()
        .unwrap_err();
    assert_eq!(err.field, "forget_bias");
    let err = ModelConfig::new(1, 8, 1, 10)
        .with_forget_bias(f64::NAN)
        .validate()
        .unwrap_err();
    assert_eq!(err.field, "forget_bias");
    ModelConfig::new(1, 8, 1, 10)
        .with_cell(Cell::PeepholeLstm)
        .with_forget_bias(-2.5)
        .validate()
        .unwrap();
}

#[test]
fn configs_without_the_key_keep_pytorchs_initialization() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let section = serde_json::json!({
        "cell": "lstm", "input_size": 1, "hidden_size": 8, "num_layers": 1, "num_classes": 10,
        "bias": true,
    });
    let config = ModelConfig::from_json_value(section).unwrap();
    assert_eq!(config.forget_bias, 0.0);
    let written = serde_json::to_value(config.with_forget_bias(1.0)).unwrap();
    assert_eq!(written["forget_bias"], 1.0);
}

/// The H × H block of gate `gate` in `weight_hh` `[H, G·H]`, row-major.
fn block(weight_hh: &Tensor<B, 2>, gate: usize, hidden: usize) -> Vec<f32> {
    weight_hh
        .clone()
        .narrow(1, gate * hidden, hidden)
        .into_data()
        .to_vec::<f32>()
        .unwrap()
}

/// max |MᵀM − I| of a row-major n × n matrix, in f64.
fn orthogonality_error(m: &[f32], n: usize) -> f64 {
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            let dot: f64 = (0..n)
                .map(|k| f64::from(m[k * n + i]) * f64::from(m[k * n + j]))
                .sum();
            let expected = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((dot - expected).abs());
        }
    }
    worst
}

#[test]
fn orthogonal_init_makes_every_gate_block_orthogonal() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let hidden = 16;
    for cell in Cell::ALL {
        let config = ModelConfig::new(3, hidden, 2, 4)
            .with_cell(cell)
            .with_recurrent_init(RecurrentInit::Orthogonal);
        let model = seeded_init(&config);
        for (k, layer) in model.rnn.layers.iter().enumerate() {
            let weight_hh = layer.weight_hh.val();
            assert_eq!(weight_hh.dims(), [hidden, cell.gates() * hidden]);
            for gate in 0..cell.gates() {
                let m = block(&weight_hh, gate, hidden);
                let error = orthogonality_error(&m, hidden);
                assert!(
                    error <= 1e-5,
                    "{cell} layer {k} gate {gate}: |WᵀW − I| = {error}"
                );
            }
            // Not all blocks alike: each is its own draw.
            if cell.gates() > 1 {
                assert_ne!(block(&weight_hh, 0, hidden), block(&weight_hh, 1, hidden));
            }
        }
        // Seeded, the draw is reproducible.
        let again = seeded_init(&config);
        assert_eq!(
            model.rnn.layers[0].weight_hh.val().into_data(),
            again.rnn.layers[0].weight_hh.val().into_data(),
            "{cell}"
        );
    }
}

#[test]
fn the_identity_gate_starts_as_the_identity_and_the_others_as_drawn() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let hidden = 6;
    for (recurrent, cell, gate, index) in [
        (RecurrentInit::Orthogonal, Cell::Lstm, "g", 2),
        (RecurrentInit::Orthogonal, Cell::PeepholeLstm, "g", 2),
        (RecurrentInit::Pytorch, Cell::Gru, "n", 2),
        (RecurrentInit::Orthogonal, Cell::Rnn, "h", 0),
    ] {
        let config = ModelConfig::new(2, hidden, 1, 3)
            .with_cell(cell)
            .with_recurrent_init(recurrent)
            .with_identity_gate(Some(gate.into()));
        config.validate().unwrap();
        let model = seeded_init(&config);
        let weight_hh = model.rnn.layers[0].weight_hh.val();
        let identity: Vec<f32> = (0..hidden * hidden)
            .map(|i| if i / hidden == i % hidden { 1.0 } else { 0.0 })
            .collect();
        assert_eq!(block(&weight_hh, index, hidden), identity, "{cell} {gate}");
        for other in (0..cell.gates()).filter(|&g| g != index) {
            let m = block(&weight_hh, other, hidden);
            assert_ne!(m, identity, "{cell} gate {other}");
            if recurrent == RecurrentInit::Orthogonal {
                assert!(
                    orthogonality_error(&m, hidden) <= 1e-5,
                    "{cell} gate {other}"
                );
            } else {
                let bound = 1.0 / (hidden as f32).sqrt();
                assert!(m.iter().all(|v| v.abs() <= bound), "{cell} gate {other}");
            }
        }
    }
}

#[test]
fn a_gate_the_cell_lacks_is_refused_by_name() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    for (cell, gate) in [
        (Cell::Lstm, "n"),
        (Cell::Gru, "g"),
        (Cell::Rnn, "i"),
        (Cell::Lstm, "candidate"),
    ] {
        let config = ModelConfig::new(2, 4, 1, 3)
            .with_cell(cell)
            .with_identity_gate(Some(gate.into()));
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "identity_gate", "{cell} {gate}");
        assert!(err.to_string().contains("one of the cell's gates"), "{err}");
        assert!(
            config.init::<B>(&Default::default()).is_err(),
            "{cell} {gate}"
        );
    }
}

#[test]
fn configs_without_the_new_keys_mean_pytorch_initialization() {
    let _serial = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let section = serde_json::json!({
        "cell": "lstm", "input_size": 28, "hidden_size": 10, "num_layers": 2, "num_classes": 10, "bias": true
    });
    let config = ModelConfig::from_json_value(section).unwrap();
    assert_eq!(config.recurrent_init, RecurrentInit::Pytorch);
    assert_eq!(config.identity_gate, None);
    let written = serde_json::to_value(
        ModelConfig::new(1, 100, 1, 10)
            .with_recurrent_init(RecurrentInit::Orthogonal)
            .with_identity_gate(Some("g".into())),
    )
    .unwrap();
    assert_eq!(written["recurrent_init"], "orthogonal");
    assert_eq!(written["identity_gate"], "g");
}
