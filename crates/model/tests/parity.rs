//! PyTorch parity: the repository's fixtures (the reference architecture of every cell, and other sizes),
//! on every backend this build enables, at the tolerances the README states.

mod common;

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
