//! Saved records: they load back exactly, on another backend too, and a record that does not fit its
//! config is an error naming both shapes, never a panic.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor};
use model::{Cell, ModelConfig, RecordError};

type B = NdArray;

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("model-record-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn save_then_load_gives_the_same_outputs() {
    let device = Default::default();
    let config = ModelConfig::new(5, 6, 2, 3);
    let model = config.init::<B>(&device).unwrap();
    let path = dir("roundtrip").join("model");
    model.save(&path).unwrap();
    assert!(path.with_extension("mpk").is_file());
    let loaded = config
        .load::<B>(path.with_extension("mpk"), &device)
        .unwrap();
    let input = Tensor::<B, 3>::random([2, 4, 5], Distribution::Normal(0.0, 1.0), &device);
    model
        .forward(input.clone())
        .into_data()
        .assert_eq(&loaded.forward(input).into_data(), true);
}

#[test]
fn a_record_saved_on_one_backend_loads_on_another() {
    let device = Default::default();
    let config = ModelConfig::new(5, 6, 2, 3);
    let model = config.init::<B>(&device).unwrap();
    let path = dir("cross").join("model");
    model.save(&path).unwrap();
    type F = burn::backend::Flex;
    let flex_device = Default::default();
    let loaded = config
        .load::<F>(path.with_extension("mpk"), &flex_device)
        .unwrap();
    let input = Tensor::<B, 3>::random([2, 4, 5], Distribution::Normal(0.0, 1.0), &device);
    let flex_input = Tensor::<F, 3>::from_data(input.to_data(), &flex_device);
    model
        .forward(input)
        .into_data()
        .assert_approx_eq::<f32>(&loaded.forward(flex_input).into_data(), Default::default());
}

#[test]
fn a_record_of_another_architecture_names_both_shapes() {
    let device = Default::default();
    let path = dir("mismatch").join("model");
    ModelConfig::new(28, 8, 2, 10)
        .init::<B>(&device)
        .unwrap()
        .save(&path)
        .unwrap();
    let file = path.with_extension("mpk");

    let err = ModelConfig::new(28, 16, 2, 10)
        .load::<B>(&file, &device)
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RecordError::Mismatch { .. }), "{text}");
    assert!(
        text.contains("rnn.layers.0.weight_ih")
            && text.contains("[28, 32]")
            && text.contains("[28, 64]"),
        "{text}"
    );

    let err = ModelConfig::new(28, 8, 3, 10)
        .load::<B>(&file, &device)
        .unwrap_err();
    assert!(
        err.to_string().contains("number of recurrent layers"),
        "{err}"
    );

    let err = ModelConfig::new(28, 8, 2, 7)
        .load::<B>(&file, &device)
        .unwrap_err();
    assert!(err.to_string().contains("fc.weight"), "{err}");

    let err = ModelConfig::new(28, 8, 2, 10)
        .with_bias(false)
        .load::<B>(&file, &device)
        .unwrap_err();
    assert!(err.to_string().contains("bias_ih"), "{err}");

    // Another cell: the GRU packs 3 gates, the peephole LSTM needs its peephole weights.
    let err = ModelConfig::new(28, 8, 2, 10)
        .with_cell(Cell::Gru)
        .load::<B>(&file, &device)
        .unwrap_err();
    assert!(
        err.to_string().contains("[28, 24]") && err.to_string().contains("cell gru"),
        "{err}"
    );
    let err = ModelConfig::new(28, 8, 2, 10)
        .with_cell(Cell::PeepholeLstm)
        .load::<B>(&file, &device)
        .unwrap_err();
    assert!(err.to_string().contains("rnn.layers.0.weight_ci"), "{err}");
}

#[test]
fn every_cell_round_trips_through_a_record() {
    let device = Default::default();
    for cell in Cell::ALL {
        let config = ModelConfig::new(5, 4, 2, 3).with_cell(cell);
        let model = config.init::<B>(&device).unwrap();
        let path = dir(&format!("cell-{cell}")).join("model");
        model.save(&path).unwrap();
        let loaded = config
            .load::<B>(path.with_extension("mpk"), &device)
            .unwrap();
        let input = Tensor::<B, 3>::random([2, 6, 5], Distribution::Default, &device);
        let diff = (model.forward(input.clone()) - loaded.forward(input))
            .abs()
            .max()
            .into_scalar();
        assert_eq!(diff, 0.0, "{cell}");
        assert_eq!(loaded.config(), config, "{cell}");
    }
}

#[test]
fn missing_corrupt_and_truncated_records_are_errors() {
    let device = Default::default();
    let config = ModelConfig::new(28, 8, 2, 10);
    let d = dir("corrupt");
    let err = config.load::<B>(d.join("absent.mpk"), &device).unwrap_err();
    assert!(
        matches!(err, RecordError::Load { .. })
            && err.to_string().contains("absent.mpk")
            && err.to_string().contains("file not found")
            && err.to_string().contains("train the run first"),
        "{err}"
    );

    let junk = d.join("junk.mpk");
    std::fs::write(
        &junk,
        (0..4000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let err = config.load::<B>(&junk, &device).unwrap_err();
    assert!(matches!(err, RecordError::Load { .. }), "{err}");

    let good = d.join("good");
    config.init::<B>(&device).unwrap().save(&good).unwrap();
    let bytes = std::fs::read(good.with_extension("mpk")).unwrap();
    let cut = d.join("cut.mpk");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = config.load::<B>(&cut, &device).unwrap_err();
    assert!(matches!(err, RecordError::Load { .. }), "{err}");
}
