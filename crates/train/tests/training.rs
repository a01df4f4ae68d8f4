//! Real training on a small subset of real MNIST (found through MNIST_DIR or the cache): it learns, it is
//! deterministic, and a resumed run ends exactly where an uninterrupted one does.

use crate::common::{SERIAL, options};

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::record::{DefaultRecorder, Recorder};
use model::RecurrentClassifier;
use train::{
    ClippingConfig, Decay, ModelSelection, OptimizerConfig, ScheduleConfig, TrainConfig, TrainError,
};

type B = Autodiff<NdArray>;

fn small_config(epochs: usize) -> TrainConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/seed.json");
    let mut config = TrainConfig::load(path).unwrap();
    // MNIST_DIR, else the cache that `train` downloads into; never the network.
    if let Err(error) = data::MnistFiles::locate(None) {
        panic!("this test needs real MNIST: {error}");
    }
    config.data.train_limit = Some(3000);
    config.data.eval_limit = Some(1000);
    config.num_epochs = epochs;
    config.optimizer = OptimizerConfig::Adam {
        learning_rate: 0.01,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    };
    config
}

fn run_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("train-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The weights of a classifier record of the config `small_config` trains, as one vector.
fn flat(
    record: <RecurrentClassifier<NdArray> as burn::module::Module<NdArray>>::Record,
) -> Vec<f32> {
    let model: RecurrentClassifier<NdArray> = model::ModelConfig::new(28, 10, 2, 10)
        .init(&Default::default())
        .unwrap();
    let model = burn::module::Module::load_record(model, record);
    model::pytorch::StateDict::from_classifier(&model).float_values()
}

/// The weights of a run's `model.mpk`.
fn weights(dir: &Path) -> Vec<f32> {
    flat(
        DefaultRecorder::new()
            .load(dir.join("model.mpk"), &Default::default())
            .unwrap(),
    )
}

#[test]
fn one_epoch_on_a_subset_beats_chance_clearly() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = run_dir("learns");
    let outcome =
        train::train::<B>(options(small_config(1), &dir, false), Default::default()).unwrap();
    let epoch = &outcome.metrics.epochs[0];
    assert!(
        epoch.valid_accuracy > 40.0,
        "valid accuracy {}% after one epoch",
        epoch.valid_accuracy
    );
    assert!(
        epoch.train_loss.is_finite() && epoch.valid_loss < 2.0,
        "{epoch:?}"
    );
    // The run directory describes itself.
    for file in [
        "config.json",
        "model.mpk",
        "metrics.json",
        "checkpoint/model-1.mpk",
        "checkpoint/optim-1.mpk",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let saved = TrainConfig::load(dir.join("config.json")).unwrap();
    assert_eq!(saved, small_config(1));
    let metrics = train::RunMetrics::load(&dir.join("metrics.json")).unwrap();
    assert_eq!(metrics.data_files.len(), 4);
    assert!(metrics.data_files.iter().all(|f| f.sha256.len() == 64));
    assert_eq!((metrics.train_items, metrics.valid_items), (3000, 1000));
}

#[test]
fn same_seed_gives_the_same_run() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = (run_dir("det-a"), run_dir("det-b"));
    let first = train::train::<B>(options(small_config(2), &a, false), Default::default()).unwrap();
    let second =
        train::train::<B>(options(small_config(2), &b, false), Default::default()).unwrap();
    let numbers = |m: &train::RunMetrics| {
        m.epochs
            .iter()
            .map(|e| (e.train_loss, e.valid_loss, e.valid_accuracy))
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&first.metrics), numbers(&second.metrics));
    assert_eq!(weights(&a), weights(&b));

    let mut other = small_config(2);
    other.seed = 1;
    let c = run_dir("det-c");
    let third = train::train::<B>(options(other, &c, false), Default::default()).unwrap();
    assert_ne!(numbers(&first.metrics), numbers(&third.metrics));
}

#[test]
fn resumed_run_ends_like_an_uninterrupted_one() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let whole = run_dir("whole");
    let full =
        train::train::<B>(options(small_config(3), &whole, false), Default::default()).unwrap();

    // Stop after epoch 1 (its checkpoint is what a killed run leaves), then resume to 3 epochs.
    let split = run_dir("split");
    train::train::<B>(options(small_config(1), &split, false), Default::default()).unwrap();
    let resumed =
        train::train::<B>(options(small_config(3), &split, true), Default::default()).unwrap();

    let numbers = |m: &train::RunMetrics| {
        m.epochs
            .iter()
            .map(|e| (e.epoch, e.train_loss, e.valid_loss, e.valid_accuracy))
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&resumed.metrics), numbers(&full.metrics));
    assert_eq!(weights(&split), weights(&whole));
}

#[test]
fn a_finished_run_is_not_overwritten_by_accident() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = run_dir("occupied");
    train::train::<B>(options(small_config(1), &dir, false), Default::default()).unwrap();
    let err =
        train::train::<B>(options(small_config(1), &dir, false), Default::default()).unwrap_err();
    assert!(
        matches!(err, TrainError::Io { .. }) && err.to_string().contains("--resume"),
        "{err}"
    );
    let err =
        train::train::<B>(options(small_config(1), &dir, true), Default::default()).unwrap_err();
    assert!(
        err.to_string().contains("already completed epoch 1"),
        "{err}"
    );
    let err = train::train::<B>(
        options(small_config(1), &run_dir("empty"), true),
        Default::default(),
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Resume { .. }), "{err}");

    // --overwrite replaces the run whole: the old run's plots and logs do not stay beside the new model.
    for leftover in ["curves.png", "confusion.png", "experiment.log"] {
        std::fs::write(dir.join(leftover), b"from the replaced run").unwrap();
    }
    let mut replace = options(small_config(1), &dir, false);
    replace.overwrite = true;
    train::train::<B>(replace, Default::default()).unwrap();
    for leftover in ["curves.png", "confusion.png"] {
        assert!(
            !dir.join(leftover).exists(),
            "{leftover} survived --overwrite"
        );
    }
    let log = std::fs::read(dir.join("experiment.log")).unwrap_or_default();
    assert_ne!(
        log, b"from the replaced run",
        "experiment.log survived --overwrite"
    );
    assert!(dir.join("model.mpk").is_file());
}

#[test]
fn held_out_validation_also_reports_the_test_set() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = small_config(1);
    config.data.validation_size = 5000;
    config.data.eval_limit = Some(500);
    let dir = run_dir("heldout");
    let outcome = train::train::<B>(options(config, &dir, false), Default::default()).unwrap();
    assert_eq!(
        (outcome.metrics.train_items, outcome.metrics.valid_items),
        (3000, 500)
    );
    let test = outcome
        .metrics
        .test
        .expect("test metrics when validation is held out");
    assert_eq!(test.items, 500);
    assert!(test.accuracy > 30.0, "{test:?}");
}

/// `small_config` with a stepped learning rate, global-norm clipping, and two directions with dropout.
fn featured_config(epochs: usize) -> TrainConfig {
    let mut config = small_config(epochs);
    config.lr_schedule = ScheduleConfig::new().with_decay(Decay::Step {
        every_epochs: 1,
        gamma: 0.5,
    });
    config.gradient_clipping = Some(ClippingConfig::Norm { max_norm: 0.5 });
    config.model.bidirectional = true;
    config.model.dropout = 0.2;
    config
}

#[test]
fn schedules_clipping_and_bidirectional_layers_train_and_resume_exactly() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let whole = run_dir("featured-whole");
    let full = train::train::<B>(
        options(featured_config(2), &whole, false),
        Default::default(),
    )
    .unwrap();
    // metrics.json records each epoch's learning rate, from the schedule.
    let rates: Vec<Option<f64>> = full
        .metrics
        .epochs
        .iter()
        .map(|e| e.learning_rate)
        .collect();
    assert_eq!(rates, [Some(0.01), Some(0.005)]);
    assert!(
        full.metrics.epochs[1].valid_accuracy > 40.0,
        "{:?}",
        full.metrics.epochs
    );
    assert_eq!(full.model.rnn.layers.len(), 4);

    // The scheduler's position is checkpointed: stopping after epoch 1 and resuming gives the same run.
    let split = run_dir("featured-split");
    train::train::<B>(
        options(featured_config(1), &split, false),
        Default::default(),
    )
    .unwrap();
    let resumed = train::train::<B>(
        options(featured_config(2), &split, true),
        Default::default(),
    )
    .unwrap();
    let numbers = |m: &train::RunMetrics| {
        m.epochs
            .iter()
            .map(|e| (e.epoch, e.train_loss, e.valid_loss, e.learning_rate))
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&resumed.metrics), numbers(&full.metrics));
    let exported = |model: &RecurrentClassifier<NdArray>| {
        model::pytorch::StateDict::from_classifier(model).tensors
    };
    assert_eq!(exported(&resumed.model), exported(&full.model));
}

/// The weights of the model checkpoint of `epoch`.
fn checkpoint_weights(dir: &Path, epoch: usize) -> Vec<f32> {
    let record: train::TrainableRecord<NdArray> = DefaultRecorder::new()
        .load(
            dir.join(format!("checkpoint/model-{epoch}.mpk")),
            &Default::default(),
        )
        .unwrap();
    flat(record.model)
}

#[test]
fn the_model_chosen_on_validation_is_kept_saved_and_tested_once() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = small_config(3);
    config.data.validation_size = 5000;
    config.data.eval_limit = Some(500);
    config.model_selection = ModelSelection::BestValidAccuracy;
    let dir = run_dir("selected");
    let outcome =
        train::train::<B>(options(config.clone(), &dir, false), Default::default()).unwrap();
    let chosen = ModelSelection::BestValidAccuracy
        .choose(&outcome.metrics.epochs)
        .unwrap();
    assert_eq!(outcome.metrics.model_epoch, Some(chosen));
    assert_eq!(weights(&dir), checkpoint_weights(&dir, chosen));
    assert!(outcome.metrics.test.is_some());
    // Kept: the chosen epoch's checkpoint and the last two (for --resume); nothing else.
    let mut kept = vec![chosen, 2, 3];
    kept.sort_unstable();
    kept.dedup();
    assert_eq!(train::RunDir::new(&dir).checkpoint_epochs(), kept);

    // A run is tested once: finishing a finished run is refused.
    let err = train::finish::<B>(config.clone(), &dir, Default::default()).unwrap_err();
    assert!(
        matches!(err, TrainError::Finish { .. }) && err.to_string().contains("evaluated once"),
        "{err}"
    );

    // A run stopped after its last epoch's checkpoint but before its end (what a signal leaves: no
    // model.mpk, no test), whose validation peaked at epoch 2: `finish` reports epoch 2's model.
    let metrics_path = dir.join("metrics.json");
    let mut metrics = train::RunMetrics::load(&metrics_path).unwrap();
    metrics.test = None;
    metrics.model_epoch = None;
    for epoch in &mut metrics.epochs {
        epoch.valid_accuracy = if epoch.epoch == 2 { 99.0 } else { 50.0 };
    }
    metrics.save(&metrics_path).unwrap();
    std::fs::remove_file(dir.join("model.mpk")).unwrap();
    let finished = train::finish::<B>(config.clone(), &dir, Default::default()).unwrap();
    assert_eq!(finished.metrics.model_epoch, Some(2));
    assert_eq!(weights(&dir), checkpoint_weights(&dir, 2));
    assert_ne!(weights(&dir), checkpoint_weights(&dir, 3));
    let test = finished
        .metrics
        .test
        .expect("finish evaluates the test set");
    assert_eq!(test.items, 500);
    assert_eq!(
        train::RunMetrics::load(&metrics_path).unwrap().test,
        Some(test)
    );
    let err = train::finish::<B>(config, &dir, Default::default()).unwrap_err();
    assert!(err.to_string().contains("evaluated once"), "{err}");
}
