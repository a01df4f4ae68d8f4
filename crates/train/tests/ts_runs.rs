//! Training on `.ts` sequence files that the test writes: sizes taken from the data, class names and
//! normalization kept with the run, it learns, it is deterministic and resumes exactly, and a config
//! that disagrees with the data (or names no directory) is refused with a message that says so.

use crate::common;

use crate::common::{SERIAL, options};

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use data::SequenceInfo;
use train::{TrainConfig, TrainError};

type B = Autodiff<NdArray>;

fn temp(tag: &str) -> PathBuf {
    common::temp("ts-runs", tag)
}

/// A `.ts` file of `n` two-channel sequences of 3–14 steps in three classes: `up` rises, `down` falls,
/// `flat` stays, each with noise, so that a small GRU can tell them apart.
fn ts_file(n: usize, seed: u64) -> String {
    let mut state = seed;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.4
    };
    let classes = ["up", "down", "flat"];
    let mut text = String::from(
        "# written by ts_runs.rs\n@problemName Slopes\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true up down flat\n@data\n",
    );
    for k in 0..n {
        let class = k % 3;
        let length = 3 + (k * 7 + seed as usize) % 12;
        let slope = [1.0, -1.0, 0.0][class];
        let first: Vec<String> = (0..length)
            .map(|t| format!("{:.4}", slope * t as f32 / length as f32 + noise()))
            .collect();
        let second: Vec<String> = (0..length)
            .map(|_| format!("{:.4}", 5.0 + noise()))
            .collect();
        text.push_str(&format!(
            "{}:{}:{}\n",
            first.join(","),
            second.join(","),
            classes[class]
        ));
    }
    text
}

fn dataset(tag: &str) -> PathBuf {
    let dir = temp(tag);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Slopes_TRAIN.ts"), ts_file(240, 1)).unwrap();
    std::fs::write(dir.join("Slopes_TEST.ts"), ts_file(60, 2)).unwrap();
    dir
}

fn config(data_dir: &Path, epochs: usize) -> TrainConfig {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/sequences.json"),
    )
    .unwrap();
    let mut config = TrainConfig::from_json(&text, Path::new("configs/sequences.json")).unwrap();
    config.data.dir = Some(data_dir.to_path_buf());
    // 40 of the 240 training sequences, by count; and the epochs given, not the recipe's floor.
    config.data.validation_fraction = None;
    config.data.validation_size = 40;
    config.min_steps = None;
    config.model.hidden_size = 8;
    config.model.num_layers = 1;
    config.batch_size = 16;
    config.num_epochs = epochs;
    config
}

#[test]
fn a_ts_run_takes_its_sizes_from_the_data_learns_and_keeps_its_classes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("learns");
    let run = temp("learns-run");
    let config = config(&data, 6);
    assert_eq!(
        config.model.input_size, 0,
        "left to the data by configs/sequences.json"
    );
    let outcome = train::train::<B>(options(config, &run, false), Default::default()).unwrap();

    let saved = TrainConfig::load(run.join("config.json")).unwrap();
    assert_eq!(saved.model.input_size, 2);
    assert_eq!(saved.model.num_classes, 3);
    let info = SequenceInfo::load(&run.join(SequenceInfo::FILE)).unwrap();
    assert_eq!(info.classes, ["up", "down", "flat"]);
    assert_eq!(info.dimensions, 2);
    // The second channel is 5 ± 0.2 everywhere: normalized with the training examples' statistics.
    assert!((info.mean[1] - 5.0).abs() < 0.05, "{:?}", info.mean);
    assert_eq!(outcome.metrics.train_items, 200);
    assert_eq!(outcome.metrics.valid_items, 40);
    let test = outcome
        .metrics
        .test
        .expect("held-out validation: the test set is evaluated once");
    assert_eq!(test.items, 60);
    assert!(test.accuracy > 80.0, "test accuracy {}", test.accuracy);
}

#[test]
fn a_ts_run_is_deterministic_and_resumes_exactly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("resume");
    let straight = temp("resume-straight");
    let parted = temp("resume-parted");
    train::train::<B>(
        options(config(&data, 3), &straight, false),
        Default::default(),
    )
    .unwrap();
    train::train::<B>(
        options(config(&data, 2), &parted, false),
        Default::default(),
    )
    .unwrap();
    train::train::<B>(options(config(&data, 3), &parted, true), Default::default()).unwrap();
    let model = |dir: &Path| common::run_weights(dir);
    assert_eq!(model(&straight), model(&parted), "resumed run differs");
    let again = temp("resume-again");
    train::train::<B>(options(config(&data, 3), &again, false), Default::default()).unwrap();
    assert_eq!(
        model(&straight),
        model(&again),
        "same seed, different weights"
    );
}

#[test]
fn a_config_that_disagrees_with_the_data_is_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("refused");
    let mut wrong = config(&data, 1);
    wrong.model.input_size = 5;
    let error = train::train::<B>(
        options(wrong, &temp("refused-a"), false),
        Default::default(),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("model.input_size is 5") && message.contains("2 channels per step"),
        "{message}"
    );

    let mut nowhere = config(&data, 1);
    nowhere.data.dir = None;
    let error = train::train::<B>(
        options(nowhere, &temp("refused-b"), false),
        Default::default(),
    )
    .unwrap_err();
    assert!(matches!(error, TrainError::Config(_)));
    assert!(error.to_string().contains("--data-dir"), "{error}");

    let empty = temp("refused-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let error = train::train::<B>(
        options(config(&empty, 1), &temp("refused-c"), false),
        Default::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("_TRAIN.ts"), "{error}");
}

/// A dataset with gaps (`?` in every fifth sequence's first channel, and a header that announces
/// them): refused by default, naming the file and the header line; trained under `data.missing`
/// "fill", which the run's saved config keeps.
#[test]
fn a_dataset_with_missing_values_trains_under_the_fill_policy() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let with_gaps = |text: String| -> String {
        let text = text.replace("@equalLength false", "@equalLength false\n@missing true");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let data = lines.iter().position(|l| l == "@data").unwrap() + 1;
        for line in lines[data..].iter_mut().step_by(5) {
            // The second value of the first channel, and the first: a gap in the middle and at the start.
            let mut values: Vec<String> = line.split(',').map(str::to_string).collect();
            values[0] = "?".into();
            values[1] = "?".into();
            *line = values.join(",");
        }
        lines.join("\n") + "\n"
    };
    let dir = temp("missing");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Slopes_TRAIN.ts"), with_gaps(ts_file(240, 1))).unwrap();
    std::fs::write(dir.join("Slopes_TEST.ts"), with_gaps(ts_file(60, 2))).unwrap();

    let error = train::train::<B>(
        options(config(&dir, 1), &temp("missing-refused"), false),
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("Slopes_TRAIN.ts:6") && error.contains("data.missing"),
        "{error}"
    );

    let mut fill = config(&dir, 6);
    fill.data.missing = data::MissingValues::Fill;
    let run = temp("missing-run");
    let outcome = train::train::<B>(options(fill, &run, false), Default::default()).unwrap();
    let saved = TrainConfig::load(run.join("config.json")).unwrap();
    assert_eq!(saved.data.missing, data::MissingValues::Fill);
    let test = outcome
        .metrics
        .test
        .expect("the test set is evaluated once");
    assert_eq!(test.items, 60);
    assert!(test.accuracy > 80.0, "test accuracy {}", test.accuracy);
}

/// The recipe's rules for datasets of any size: a share of the training examples held out, and a
/// floor of optimizer steps that raises the epoch count of a small dataset (kept in the saved
/// config, so that `--resume` reads it).
#[test]
fn a_small_dataset_gets_a_share_held_out_and_the_step_floor() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp("small");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Slopes_TRAIN.ts"), ts_file(60, 1)).unwrap();
    std::fs::write(dir.join("Slopes_TEST.ts"), ts_file(30, 2)).unwrap();
    let mut config = config(&dir, 2);
    config.data.validation_size = 0;
    config.data.validation_fraction = Some(0.2);
    config.min_steps = Some(30);
    let run = temp("small-run");
    let outcome = train::train::<B>(options(config, &run, false), Default::default()).unwrap();
    // 12 of 60 held out; 48 in batches of 16 are 3 steps an epoch: 10 epochs for 30 steps.
    assert_eq!(outcome.metrics.valid_items, 12);
    assert_eq!(outcome.metrics.train_items, 48);
    assert_eq!(outcome.metrics.epochs.len(), 10);
    let saved = TrainConfig::load(run.join("config.json")).unwrap();
    assert_eq!(saved.num_epochs, 10);
    assert_eq!(saved.min_steps, Some(30));
}

/// Files written by sktime's own writer (`tests/fixtures/sktime/Wave`, two channels, two classes
/// that differ by level) train with the recipe, from a clean clone.
#[test]
fn sktimes_files_train() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sktime/Wave");
    let mut config = config(&dir, 8);
    config.data.validation_size = 0;
    config.data.validation_fraction = Some(0.2);
    // Eight training examples are one step an epoch: the step floor gives them a hundred.
    config.min_steps = Some(100);
    let run = temp("sktime-run");
    let outcome = train::train::<B>(options(config, &run, false), Default::default()).unwrap();
    let info = SequenceInfo::load(&run.join(SequenceInfo::FILE)).unwrap();
    assert_eq!(info.classes, ["low", "high"]);
    assert_eq!(outcome.metrics.valid_items, 2);
    let test = outcome
        .metrics
        .test
        .expect("the test set is evaluated once");
    assert_eq!(test.items, 4);
    assert_eq!(test.accuracy, 100.0);
}

#[path = "../examples/in_memory.rs"]
#[allow(dead_code)]
mod in_memory;

#[test]
fn the_in_memory_example_learns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let accuracy = in_memory::run(&temp("in-memory")).unwrap();
    assert!(accuracy > 80.0, "test accuracy {accuracy}");
}
