//! Every cell and every sequence mode, end to end: trained with `train`, reopened with `infer`, the
//! reloaded model reproduces the run's own validation numbers. A permuted run keeps its permutation.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::DataLoader;
use data::{DataConfig, EpochLoader, MnistFiles, Permutation, SequenceLayout, SequenceMode, Split};
use infer::Run;
use model::Cell;
use train::{Display, RunOptions, TrainConfig};

type B = NdArray;

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sequences-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(cell: Cell, sequence: SequenceMode, train_items: usize) -> TrainConfig {
    // MNIST_DIR, else the cache that `train` downloads into; never the network.
    if let Err(error) = MnistFiles::locate(None) {
        panic!("this test needs real MNIST: {error}");
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.json");
    let mut config = TrainConfig::load(path).unwrap();
    config.model.cell = cell;
    config.model.hidden_size = 8;
    config.model.input_size = sequence.shape(28, 28).1;
    config.data.sequence = sequence;
    config.data.permutation_seed = 11;
    config.data.train_limit = Some(train_items);
    config.data.eval_limit = Some(100);
    config.num_epochs = 1;
    config
}

/// Trains, reopens the run with `infer`, and checks that the reloaded model scores exactly what
/// the run recorded for its last epoch.
fn train_and_reload(config: TrainConfig, dir: &Path) -> Run {
    let options = RunOptions {
        config,
        run_dir: dir.to_path_buf(),
        resume: false,
        overwrite: false,
        backend: "ndarray".into(),
        display: Display::Lines,
        stop: Default::default(),
    };
    let outcome = train::train::<Autodiff<B>>(options, Default::default()).unwrap();
    let recorded = outcome.metrics.epochs.last().unwrap().clone();

    let run = Run::open(dir).unwrap();
    let model = run.load_model::<B>(&Default::default()).unwrap();
    let test = MnistFiles::locate(None)
        .unwrap()
        .load(Split::Test)
        .unwrap()
        .take(100);
    let batcher = run.batcher(test.rows(), test.cols()).unwrap();
    let loader: EpochLoader<B, _, data::SequenceBatch<B>> = EpochLoader::new(
        std::sync::Arc::new(test),
        std::sync::Arc::new(batcher),
        50,
        Default::default(),
    );
    let evaluation = model.evaluate(loader.iter().map(|b| (b.sequences, b.lengths, b.targets)));
    assert_eq!(evaluation.items, 100);
    assert!(
        (evaluation.accuracy - recorded.valid_accuracy).abs() < 1e-9,
        "reloaded {} vs recorded {}",
        evaluation.accuracy,
        recorded.valid_accuracy
    );
    assert!((evaluation.loss - recorded.valid_loss).abs() < 1e-4);
    run
}

#[test]
fn every_cell_trains_on_rows_and_reloads() {
    for cell in Cell::ALL {
        let dir = temp(cell.name());
        let run = train_and_reload(config(cell, SequenceMode::Rows, 500), &dir);
        assert_eq!(run.model.cell, cell);
        assert!(!dir.join(DataConfig::PERMUTATION_FILE).exists());
    }
}

#[test]
fn pixel_and_permuted_runs_keep_their_reading_order() {
    let dir = temp("pixels");
    let run = train_and_reload(config(Cell::Gru, SequenceMode::Pixels, 128), &dir);
    assert_eq!(run.batcher(28, 28).unwrap().sequence_shape(), (784, 1));

    let dir = temp("permuted");
    let run = train_and_reload(config(Cell::Rnn, SequenceMode::PermutedPixels, 128), &dir);
    let saved = Permutation::load(dir.join(DataConfig::PERMUTATION_FILE), 784).unwrap();
    assert_eq!(saved, Permutation::from_seed(784, 11));
    let batcher = run.batcher(28, 28).unwrap();
    let expected = data::MnistBatcher::new(28, 28, 0.1307, 0.3081)
        .with_layout(SequenceLayout::PermutedPixels(std::sync::Arc::new(saved)));
    assert_eq!(batcher, expected);
}

#[test]
fn a_model_input_size_that_does_not_fit_the_sequence_mode_is_refused_before_training() {
    let mut config = config(Cell::Lstm, SequenceMode::Pixels, 128);
    config.model.input_size = 28;
    let dir = temp("misfit");
    let options = RunOptions {
        config,
        run_dir: dir.clone(),
        resume: false,
        overwrite: false,
        backend: "ndarray".into(),
        display: Display::Lines,
        stop: Default::default(),
    };
    let err = train::train::<Autodiff<B>>(options, Default::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`pixels`")
            && text.contains("784 steps of 1 features")
            && text.contains("set model.input_size to 1"),
        "{text}"
    );
    assert!(!dir.exists(), "the run directory was created");
}
