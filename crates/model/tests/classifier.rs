//! Shapes, configuration checks and PyTorch-style initialization of the classifier.

use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor};
use model::{Cell, ConfigError, ModelConfig};

type B = NdArray;

#[test]
fn output_shapes_follow_the_config() {
    let device = Default::default();
    let shapes = [
        (ModelConfig::new(28, 10, 2, 10), 4, 28),
        (ModelConfig::new(1, 3, 1, 2), 2, 50),
        (ModelConfig::new(5, 16, 4, 7).with_bias(false), 1, 3),
    ];
    for (config, batch, time) in Cell::ALL.into_iter().flat_map(|cell| {
        shapes
            .iter()
            .map(move |(config, batch, time)| (config.clone().with_cell(cell), *batch, *time))
    }) {
        let model = config.init::<B>(&device).unwrap();
        let input = Tensor::<B, 3>::random(
            [batch, time, config.input_size],
            Distribution::Default,
            &device,
        );
        assert_eq!(
            model.forward(input.clone()).dims(),
            [batch, config.num_classes]
        );
        assert_eq!(
            model.forward_per_step(input).dims(),
            [batch, time, config.num_classes]
        );
        assert_eq!(model.config(), config);
    }
}

#[test]
fn last_step_of_per_step_logits_is_the_forward_output() {
    let device = Default::default();
    for cell in Cell::ALL {
        let model = ModelConfig::new(8, 6, 2, 4)
            .with_cell(cell)
            .init::<B>(&device)
            .unwrap();
        let input = Tensor::<B, 3>::random([3, 9, 8], Distribution::Normal(0.0, 1.0), &device);
        let per_step = model.forward_per_step(input.clone());
        let last = per_step.narrow(1, 8, 1).reshape([3, 4]);
        last.into_data()
            .assert_approx_eq::<f32>(&model.forward(input).into_data(), Default::default());
    }
}

#[test]
fn later_time_steps_change_the_output() {
    // The classifier reads the whole sequence: changing only the last row changes the logits.
    let device = Default::default();
    for cell in Cell::ALL {
        let model = ModelConfig::new(4, 5, 2, 3)
            .with_cell(cell)
            .init::<B>(&device)
            .unwrap();
        let input = Tensor::<B, 3>::zeros([1, 6, 4], &device);
        let changed = input
            .clone()
            .slice_assign([0..1, 5..6, 0..4], Tensor::ones([1, 1, 4], &device));
        let diff = (model.forward(input) - model.forward(changed))
            .abs()
            .max()
            .into_scalar();
        assert!(diff > 1e-4, "{cell}: {diff}");
    }
}

#[test]
fn zero_sizes_are_rejected() {
    let device = Default::default();
    let err = ModelConfig::new(28, 0, 2, 10)
        .init::<B>(&device)
        .unwrap_err();
    assert_eq!(err.field, "hidden_size");
    let err: ConfigError = ModelConfig::new(28, 10, 0, 10)
        .init::<B>(&device)
        .unwrap_err();
    assert_eq!(err.field, "num_layers");
    assert!(err.to_string().contains("num_layers"));
    assert!(ModelConfig::new(0, 10, 1, 10).validate().is_err());
    assert!(ModelConfig::new(28, 10, 1, 0).validate().is_err());
}

#[test]
fn initialization_is_pytorchs() {
    // PyTorch: every LSTM/GRU/RNN weight and bias ~ U(-1/√H, 1/√H) (our peephole weights too);
    // Linear weight and bias ~ U(-1/√in, 1/√in).
    for cell in Cell::ALL {
        check_initialization(cell);
    }
}

fn check_initialization(cell: Cell) {
    let device = Default::default();
    let hidden = 16;
    let model = ModelConfig::new(28, hidden, 2, 10)
        .with_cell(cell)
        .init::<B>(&device)
        .unwrap();
    let bound = 1.0 / (hidden as f32).sqrt();
    let mut lstm_values = Vec::new();
    for layer in &model.rnn.layers {
        assert_eq!(layer.weight_hh.dims(), [hidden, cell.gates() * hidden]);
        for t in [layer.weight_ih.val(), layer.weight_hh.val()] {
            lstm_values.extend(t.into_data().to_vec::<f32>().unwrap());
        }
        let peepholes = [&layer.weight_ci, &layer.weight_cf, &layer.weight_co];
        assert_eq!(
            peepholes.iter().all(|p| p.is_some()),
            cell == Cell::PeepholeLstm,
            "{cell}"
        );
        let optional = [&layer.bias_ih, &layer.bias_hh]
            .into_iter()
            .chain(peepholes);
        for b in optional.flatten() {
            lstm_values.extend(b.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    assert!(lstm_values.iter().all(|v| v.abs() <= bound));
    // Spread over the whole interval, not concentrated (a normal init would fail the max check or this one).
    let max = lstm_values.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max > 0.95 * bound, "max {max} vs bound {bound}");
    let mean_abs = lstm_values.iter().map(|v| v.abs()).sum::<f32>() / lstm_values.len() as f32;
    assert!(
        (mean_abs - bound / 2.0).abs() < 0.05 * bound,
        "mean |w| {mean_abs}, uniform gives {}",
        bound / 2.0
    );

    let fc = model.fc.weight.val().into_data().to_vec::<f32>().unwrap();
    assert!(fc.iter().all(|v| v.abs() <= bound));
}
