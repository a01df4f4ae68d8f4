//! Importing and exporting PyTorch state_dicts, and the errors bad files produce.

use crate::common;

use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor};
use model::ModelConfig;
use model::pytorch::{HostTensor, ImportError, StateDict};

type B = NdArray;

#[test]
fn sizes_are_read_from_the_tensors() {
    let reference = StateDict::read(common::reference_fixture()).unwrap();
    assert_eq!(
        reference.model_config().unwrap(),
        ModelConfig::new(28, 10, 2, 10)
    );
    let small = StateDict::read(
        common::repo_root().join("tests/fixtures/pytorch-lstm-h5-l2-in3-c4.safetensors"),
    )
    .unwrap();
    assert_eq!(small.model_config().unwrap(), ModelConfig::new(3, 5, 2, 4));
}

#[test]
fn export_then_import_gives_the_same_model() {
    let device = Default::default();
    let model = ModelConfig::new(6, 4, 3, 5).init::<B>(&device).unwrap();
    let bytes = StateDict::from_classifier(&model).to_bytes().unwrap();
    let back = StateDict::from_bytes(&bytes, "roundtrip")
        .unwrap()
        .to_classifier::<B>(&device)
        .unwrap();
    assert_eq!(back.config(), model.config());
    let input = Tensor::<B, 3>::random([3, 7, 6], Distribution::Normal(0.0, 1.0), &device);
    let (a, b) = (model.forward(input.clone()), back.forward(input));
    a.into_data().assert_eq(&b.into_data(), true);
}

#[test]
fn exported_names_are_pytorchs() {
    let device = Default::default();
    let model = ModelConfig::new(28, 10, 2, 10).init::<B>(&device).unwrap();
    let exported = StateDict::from_classifier(&model);
    let reference = StateDict::read(common::reference_fixture()).unwrap();
    for (name, tensor) in &exported.tensors {
        let theirs = reference
            .tensors
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in PyTorch's state_dict"));
        assert_eq!(tensor.shape(), theirs.shape(), "{name}");
    }
}

fn reference() -> StateDict {
    StateDict::read(common::reference_fixture()).unwrap()
}

#[test]
fn missing_tensor_is_an_error_naming_it() {
    let mut sd = reference();
    sd.tensors.remove("lstm.bias_hh_l1");
    let err = sd.to_classifier::<B>(&Default::default()).unwrap_err();
    assert!(
        matches!(&err, ImportError::MissingTensor { name, .. } if name == "lstm.bias_hh_l1"),
        "{err}"
    );
    assert!(
        err.to_string().contains("pytorch-lstm-h10-l2.safetensors"),
        "{err}"
    );
}

#[test]
fn wrong_shape_is_an_error_naming_both_shapes() {
    let mut sd = reference();
    sd.tensors.insert(
        "lstm.weight_hh_l1".into(),
        HostTensor::Float {
            shape: vec![40, 9],
            values: vec![0.0; 360],
        },
    );
    let err = sd.to_classifier::<B>(&Default::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ImportError::Shape { .. }), "{text}");
    assert!(
        text.contains("[40, 9]") && text.contains("[40, 10]"),
        "{text}"
    );
}

#[test]
fn head_of_the_wrong_size_is_rejected() {
    let mut sd = reference();
    sd.tensors.insert(
        "fc.bias".into(),
        HostTensor::Float {
            shape: vec![9],
            values: vec![0.0; 9],
        },
    );
    assert!(matches!(
        sd.to_classifier::<B>(&Default::default()),
        Err(ImportError::Shape { .. })
    ));
}

#[test]
fn packing_that_is_not_four_gates_is_rejected() {
    let mut sd = reference();
    sd.tensors.insert(
        "lstm.weight_ih_l0".into(),
        HostTensor::Float {
            shape: vec![30, 28],
            values: vec![0.0; 840],
        },
    );
    let err = sd.model_config().unwrap_err();
    assert!(err.to_string().contains("4 gates"), "{err}");
}

#[test]
fn a_file_without_lstm_weights_is_rejected() {
    let mut sd = reference();
    sd.tensors.retain(|name, _| !name.starts_with("lstm."));
    let err = sd.model_config().unwrap_err();
    assert!(matches!(err, ImportError::NoRecurrent { .. }), "{err}");
}

#[test]
fn garbage_bytes_are_a_format_error() {
    let err = StateDict::from_bytes(b"definitely not safetensors", "junk.safetensors").unwrap_err();
    assert!(matches!(err, ImportError::Format { .. }), "{err}");
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
    let err = StateDict::read("/nonexistent/model.safetensors").unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
}

#[test]
fn a_failed_write_is_a_write_error_naming_the_file() {
    let missing = std::env::temp_dir()
        .join(format!("no-such-dir-{}", std::process::id()))
        .join("model.safetensors");
    let err = reference().write(&missing).unwrap_err();
    assert!(matches!(err, ImportError::Write { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot write") && text.contains("model.safetensors"),
        "{text}"
    );
}

#[test]
fn truncated_file_is_a_format_error() {
    let bytes = std::fs::read(common::reference_fixture()).unwrap();
    let err = StateDict::from_bytes(&bytes[..bytes.len() / 2], "half").unwrap_err();
    assert!(matches!(err, ImportError::Format { .. }), "{err}");
}
