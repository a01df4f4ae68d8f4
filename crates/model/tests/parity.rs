//! PyTorch parity: the repository's fixtures (the reference architecture of every cell, and other sizes),
//! on every backend this build enables, at the tolerances the README states.

use crate::common;

use model::Cell;
use model::parity::{self, AFTER_STEPS_TOLERANCE, LOGITS_TOLERANCE, LOSS_TOLERANCE};
use model::pytorch::StateDict;

fn assert_parity(path: &std::path::Path) {
    let reference = StateDict::read(path).unwrap();
    let mut backends = 0;
    for_each_backend!(|name, device| {
        let report =
            parity::check::<B>(&reference, &device).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            report.logits_max_abs_diff <= LOGITS_TOLERANCE,
            "{name} {}: logits differ by {}",
            path.display(),
            report.logits_max_abs_diff
        );
        assert!(
            report.after_2_steps_max_abs_diff <= AFTER_STEPS_TOLERANCE,
            "{name} {}: logits after two SGD steps differ by {}",
            path.display(),
            report.after_2_steps_max_abs_diff
        );
        let loss = report.loss_abs_diff.expect("the fixtures record the loss");
        assert!(
            loss <= LOSS_TOLERANCE,
            "{name} {}: loss differs by {loss}",
            path.display()
        );
        assert!(report.passes(), "{name} {}: {report:?}", path.display());
        backends += 1;
    });
    assert!(backends > 0, "no backend enabled");
}

/// Embedding → LSTM or GRU → Linear over two windows, the state carried and detached between them:
/// logits, loss, final states and every gradient.
#[test]
fn language_models_match_pytorch() {
    for path in common::language_model_fixtures() {
        let reference = StateDict::read(&path).unwrap();
        let mut backends = 0;
        for_each_backend!(|name, device| {
            let report = parity::check_language_model::<B>(&reference, &device)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(report.passes(), "{name} {}: {report:?}", path.display());
            backends += 1;
        });
        assert!(backends > 0, "no backend enabled");
    }
}

#[test]
fn reference_architecture_matches_pytorch() {
    assert_parity(&common::reference_fixture());
}

#[test]
fn every_cell_matches_pytorch() {
    for (name, cell) in [
        ("lstm", Cell::Lstm),
        ("peephole", Cell::PeepholeLstm),
        ("gru", Cell::Gru),
        ("rnn", Cell::Rnn),
    ] {
        let path = common::cell_fixture(name);
        let config = StateDict::read(&path).unwrap().model_config().unwrap();
        assert_eq!(config.cell, cell, "{}", path.display());
        assert_parity(&path);
    }
}

#[test]
fn other_sizes_and_layer_counts_match_pytorch() {
    let files = common::repo_fixtures();
    let sizes: Vec<_> = files
        .iter()
        .map(|f| StateDict::read(f).unwrap().model_config().unwrap())
        .collect();
    // The fixtures really cover other shapes than the reference: 1 and 3 layers, another input size.
    assert!(sizes.iter().any(|c| c.num_layers == 1));
    assert!(sizes.iter().any(|c| c.num_layers == 3));
    assert!(
        sizes
            .iter()
            .any(|c| c.input_size != 28 && c.num_classes != 10)
    );
    // ... and every cell at other sizes than the reference h10-l2 files.
    for cell in Cell::ALL {
        assert!(
            sizes.iter().any(|c| c.cell == cell && c.hidden_size != 10),
            "no {cell} fixture of another size"
        );
    }
    for file in &files {
        assert_parity(file);
    }
}

#[test]
fn a_report_fails_on_any_difference_past_its_tolerance() {
    let good = parity::ParityReport {
        logits_max_abs_diff: 0.0,
        after_2_steps_max_abs_diff: 0.0,
        loss_abs_diff: Some(0.0),
    };
    assert!(good.passes());
    assert!(
        parity::ParityReport {
            loss_abs_diff: None,
            ..good
        }
        .passes()
    );
    for bad in [
        parity::ParityReport {
            logits_max_abs_diff: 2.0 * LOGITS_TOLERANCE,
            ..good
        },
        parity::ParityReport {
            after_2_steps_max_abs_diff: 2.0 * AFTER_STEPS_TOLERANCE,
            ..good
        },
        parity::ParityReport {
            loss_abs_diff: Some(2.0 * LOSS_TOLERANCE),
            ..good
        },
        parity::ParityReport {
            loss_abs_diff: Some(f32::NAN),
            ..good
        },
    ] {
        assert!(!bad.passes(), "{bad:?}");
    }
}

#[test]
fn parity_check_detects_a_wrong_weight() {
    let mut reference = StateDict::read(common::reference_fixture()).unwrap();
    if let Some(model::pytorch::HostTensor::Float { values, .. }) =
        reference.tensors.get_mut("lstm.weight_hh_l1")
    {
        values[3] += 0.05;
    }
    for_each_backend!(|name, device| {
        let report = parity::check::<B>(&reference, &device).unwrap();
        assert!(
            !report.passes(),
            "{name}: a perturbed weight still passed: {report:?}"
        );
    });
}

/// The fixtures PyTorch ran on packed sequences (`*-lengths.safetensors`).
fn packed_fixtures() -> Vec<std::path::PathBuf> {
    common::repo_fixtures()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-lengths.safetensors"))
        .collect()
}

#[test]
fn packed_sequences_match_pytorch() {
    let files = packed_fixtures();
    let mut covered = Vec::new();
    for file in &files {
        let reference = StateDict::read(file).unwrap();
        let config = reference.model_config().unwrap();
        covered.push((config.cell, config.bidirectional, config.num_layers));
        // Garbage really sits past the lengths: PyTorch never read it and Burn must not either.
        let Some(model::pytorch::HostTensor::Float { values, .. }) = reference.tensors.get("input")
        else {
            panic!("{}: no float input", file.display())
        };
        assert!(values.iter().any(|v| v.is_nan()), "{}", file.display());
        assert!(values.iter().any(|v| v.abs() >= 1e30), "{}", file.display());
        assert_parity(file);
    }
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        for bidirectional in [false, true] {
            assert!(
                covered.iter().any(|c| c.0 == cell && c.1 == bidirectional),
                "no packed {cell} fixture with bidirectional = {bidirectional}"
            );
        }
    }
    assert!(covered.iter().any(|c| c.0 == Cell::PeepholeLstm));
    assert!(covered.iter().any(|c| c.2 == 3));
}

#[test]
fn packed_parity_depends_on_the_lengths() {
    // Lengths all equal to T make every garbage value part of the sequence: the logits turn NaN.
    let mut reference = StateDict::read(&packed_fixtures()[0]).unwrap();
    if let Some(model::pytorch::HostTensor::Int { values, .. }) =
        reference.tensors.get_mut("lengths")
    {
        let t = values[0];
        values.iter_mut().for_each(|v| *v = t);
    }
    for_each_backend!(|name, device| {
        let report = parity::check::<B>(&reference, &device).unwrap();
        assert!(!report.passes(), "{name}: wrong lengths still passed");
    });
}

#[test]
fn bad_lengths_are_refused_with_the_file_and_the_row() {
    let file = &packed_fixtures()[0];
    let original = StateDict::read(file).unwrap();
    let t = original.get("input", "test").unwrap().shape()[1];
    for (edit, expected) in [
        (0_i64, "sequence 2 the length 0".to_string()),
        (
            t as i64 + 1,
            format!("length {}; each length must lie in 1..={t}", t + 1),
        ),
    ] {
        let mut reference = original.clone();
        if let Some(model::pytorch::HostTensor::Int { values, .. }) =
            reference.tensors.get_mut("lengths")
        {
            values[2] = edit;
        }
        type B = burn::backend::Autodiff<burn::backend::NdArray>;
        let error = parity::check::<B>(&reference, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains(&expected), "{error}");
        assert!(error.contains(&file.display().to_string()), "{error}");
    }
}
