//! The one data-source seam of training: MNIST or a directory of `.ts` files, read, split and checked
//! against the model config, then served as loaders of [`SequenceBatch`]es, which is all that `fit`
//! sees.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use data::{
    DataSource, EpochLoader, MnistBatcher, MnistDataset, MnistFiles, SequenceBatch, SequenceInfo,
    SequenceLayout, Split, TsBatcher, TsDataset, TsFiles, split_indices, train_validation_split,
};
use model::{RecurrentAutodiffBackend, RecurrentBackend};

use crate::artifacts::{RunDir, write_atomically};
use crate::config::TrainConfig;
use crate::run::{TrainError, io_error};

/// A loader of batches on backend `B`.
pub(crate) type Loader<B> = Arc<dyn DataLoader<B, SequenceBatch<B>>>;

/// The loaders of a run: training (shuffled, on the autodiff backend), validation, and the test set
/// when validation data is held out of the training set.
pub(crate) struct Loaders<B: RecurrentAutodiffBackend> {
    pub train: Loader<B>,
    pub valid: Loader<B::InnerBackend>,
    pub test: Option<Loader<B::InnerBackend>>,
}

/// The three sets of one source, split and limited as the config says.
enum Sets {
    Mnist {
        train: MnistDataset,
        valid: MnistDataset,
        test: Option<MnistDataset>,
    },
    Ts {
        train: TsDataset,
        valid: TsDataset,
        test: Option<TsDataset>,
        info: SequenceInfo,
    },
}

/// A run's data, read and checked.
pub(crate) struct RunData {
    sets: Sets,
    /// The files read, for `metrics.json`.
    pub files: Vec<PathBuf>,
    /// What the validation columns measure, in words.
    pub validation: String,
}

impl RunData {
    /// Reads the data `config` names and fills in, or checks, the model's input size and class
    /// count (a `.ts` config may leave them out: 0).
    pub fn load(config: &mut TrainConfig) -> Result<Self, TrainError> {
        match config.data.source {
            DataSource::Mnist => Self::mnist(config),
            DataSource::Ts => Self::ts(config),
        }
    }

    pub fn train_items(&self) -> usize {
        match &self.sets {
            Sets::Mnist { train, .. } => train.len(),
            Sets::Ts { train, .. } => train.len(),
        }
    }

    pub fn valid_items(&self) -> usize {
        match &self.sets {
            Sets::Mnist { valid, .. } => valid.len(),
            Sets::Ts { valid, .. } => valid.len(),
        }
    }

    fn mnist(config: &TrainConfig) -> Result<Self, TrainError> {
        let files = MnistFiles::locate(config.data.dir.as_deref())?;
        let train_full = files.load(Split::Train)?;
        let test = files.load(Split::Test)?;
        for (what, set) in [("training", &train_full), ("test", &test)] {
            let (steps, features) = config.data.sequence.shape(set.rows(), set.cols());
            if features != config.model.input_size {
                return Err(TrainError::ImageSize {
                    what,
                    rows: set.rows(),
                    cols: set.cols(),
                    mode: config.data.sequence.name(),
                    steps,
                    features,
                    input_size: config.model.input_size,
                });
            }
        }
        let data = &config.data;
        let limit = |set: MnistDataset, limit: Option<usize>| match limit {
            Some(n) => set.take(n),
            None => set,
        };
        let (train, valid, test, validation) = if data.validation_size > 0 {
            let (train, valid) =
                train_validation_split(&train_full, data.validation_size, data.split_seed)?;
            let what = format!(
                "{} training images held out (split seed {})",
                data.validation_size, data.split_seed
            );
            (train, valid, Some(limit(test, data.eval_limit)), what)
        } else {
            (train_full, test, None, "the test set".to_string())
        };
        Ok(Self {
            sets: Sets::Mnist {
                train: limit(train, data.train_limit),
                valid: limit(valid, data.eval_limit),
                test,
            },
            files: files.all().into_iter().map(Path::to_path_buf).collect(),
            validation,
        })
    }

    fn ts(config: &mut TrainConfig) -> Result<Self, TrainError> {
        let data = &config.data;
        let dir = data.dir.clone().ok_or_else(|| {
            TrainError::Config(
                "data.source is \"ts\" but no dataset directory is given: set data.dir or pass --data-dir DIR (a directory holding one *_TRAIN.ts and one *_TEST.ts)".into(),
            )
        })?;
        let files = TsFiles::locate(&dir)?;
        let (train_full, test) = files.load()?;
        Self::sequences(
            config,
            train_full,
            test,
            &files.train,
            vec![files.train.clone(), files.test.clone()],
        )
    }

    /// `.ts`-like sequences already in memory (`origin` names them in messages).
    pub fn sequences(
        config: &mut TrainConfig,
        train_full: TsDataset,
        test: TsDataset,
        origin: &Path,
        files: Vec<PathBuf>,
    ) -> Result<Self, TrainError> {
        for set in [&train_full, &test] {
            if set.examples.iter().any(|e| e.label.is_none()) || !set.is_labelled() {
                return Err(TrainError::Config(format!(
                    "{}: some sequences have no class label; training needs a label on every one",
                    origin.display()
                )));
            }
        }
        if test.dimensions != train_full.dimensions || test.classes != train_full.classes {
            return Err(TrainError::Config(format!(
                "the test sequences ({} features, classes {:?}) do not match the training sequences of {} ({} features, classes {:?})",
                test.dimensions,
                test.classes,
                origin.display(),
                train_full.dimensions,
                train_full.classes
            )));
        }
        resolve_size(
            &mut config.model.input_size,
            "input_size",
            train_full.dimensions,
            "channels per step",
            origin,
        )?;
        resolve_size(
            &mut config.model.num_classes,
            "num_classes",
            train_full.classes.len(),
            "classes",
            origin,
        )?;
        let data = &config.data;
        let limit = |set: TsDataset, limit: Option<usize>| match limit {
            Some(n) => set.take(n),
            None => set,
        };
        let (train, valid, test, validation) = if data.validation_size > 0 {
            let (train, valid) =
                split_indices(train_full.len(), data.validation_size, data.split_seed)?;
            let what = format!(
                "{} training examples of {} held out (split seed {})",
                data.validation_size,
                origin.display(),
                data.split_seed
            );
            (
                train_full.subset(&train),
                train_full.subset(&valid),
                Some(limit(test, data.eval_limit)),
                what,
            )
        } else {
            (train_full, test, None, "the test set".to_string())
        };
        let train = limit(train, data.train_limit);
        // Normalization from the training examples only.
        let info = SequenceInfo::fit(&train);
        Ok(Self {
            sets: Sets::Ts {
                train,
                valid: limit(valid, data.eval_limit),
                test,
                info,
            },
            files,
            validation,
        })
    }

    /// The loaders on `device`; writes what inference needs to read data the same way (a permuted
    /// run's permutation, a `.ts` run's `sequences.json`).
    pub fn loaders<B: RecurrentAutodiffBackend>(
        &self,
        config: &TrainConfig,
        run_dir: &RunDir,
        resume: bool,
        start_epoch: usize,
        device: &B::Device,
    ) -> Result<Loaders<B>, TrainError> {
        match &self.sets {
            Sets::Mnist { train, valid, test } => {
                let batcher = Arc::new(
                    MnistBatcher::new(
                        train.rows(),
                        train.cols(),
                        config.data.mean,
                        config.data.std,
                    )
                    .with_layout(sequence_layout(
                        config,
                        run_dir,
                        resume,
                        (train.rows(), train.cols()),
                    )?),
                );
                Ok(build(
                    config,
                    start_epoch,
                    device,
                    batcher,
                    (train.clone(), None),
                    valid.clone(),
                    test.clone(),
                ))
            }
            Sets::Ts {
                train,
                valid,
                test,
                info,
            } => {
                let path = run_dir.root.join(SequenceInfo::FILE);
                info.save(&path).map_err(|e| {
                    io_error(
                        &path,
                        format!("cannot write the class names and normalization ({e})"),
                    )
                })?;
                let lengths = train.lengths();
                Ok(build(
                    config,
                    start_epoch,
                    device,
                    Arc::new(TsBatcher::new(info)),
                    (train.clone(), Some(lengths)),
                    valid.clone(),
                    test.clone(),
                ))
            }
        }
    }
}

/// Fills a model size left at 0 from the data, or checks the one given.
fn resolve_size(
    size: &mut usize,
    field: &str,
    found: usize,
    what: &str,
    path: &Path,
) -> Result<(), TrainError> {
    if *size == 0 {
        *size = found;
        Ok(())
    } else if *size == found {
        Ok(())
    } else {
        Err(TrainError::Config(format!(
            "model.{field} is {size}, but {} has {found} {what}; set model.{field} to {found}, or leave it out to take it from the data",
            path.display()
        )))
    }
}

/// The loaders of one source: training shuffled per epoch (and grouped by length when lengths are
/// given), validation and test in order.
fn build<B, I, Bt, D>(
    config: &TrainConfig,
    start_epoch: usize,
    device: &B::Device,
    batcher: Arc<Bt>,
    (train, lengths): (D, Option<Vec<usize>>),
    valid: D,
    test: Option<D>,
) -> Loaders<B>
where
    B: RecurrentAutodiffBackend,
    I: Send + Sync + 'static,
    D: Dataset<I> + 'static,
    Bt: Batcher<B, I, SequenceBatch<B>>
        + Batcher<B::InnerBackend, I, SequenceBatch<B::InnerBackend>>
        + 'static,
{
    let mut train_loader = EpochLoader::new(
        Arc::new(train),
        batcher.clone() as Arc<dyn Batcher<B, I, SequenceBatch<B>>>,
        config.batch_size,
        device.clone(),
    )
    .shuffled(config.seed)
    .starting_at_epoch(start_epoch + 1)
    .on_epoch_start(crate::run::reseed::<B>(device.clone(), config.seed));
    if let Some(lengths) = lengths {
        train_loader = train_loader.grouped_by_length(lengths);
    }
    let eval = |set: D| -> Loader<B::InnerBackend> {
        Arc::new(EpochLoader::new(
            Arc::new(set),
            batcher.clone() as Arc<dyn Batcher<B::InnerBackend, I, SequenceBatch<B::InnerBackend>>>,
            config.eval_batch_size,
            device.clone(),
        ))
    };
    Loaders {
        train: Arc::new(train_loader),
        valid: eval(valid),
        test: test.map(eval),
    }
}

/// The reading order of the images. A `permuted_pixels` run saves its permutation, and a resumed
/// one reads it back, so that the order never depends on the random number generator's version.
fn sequence_layout(
    config: &TrainConfig,
    run_dir: &RunDir,
    resume: bool,
    (rows, cols): (usize, usize),
) -> Result<SequenceLayout, TrainError> {
    let path = run_dir.permutation();
    let layout = config
        .data
        .sequence_layout(rows, cols, resume.then_some(path.as_path()))?;
    if let SequenceLayout::PermutedPixels(permutation) = &layout {
        write_atomically(&path, permutation.to_json().as_bytes())
            .map_err(|e| io_error(&path, format!("cannot write the pixel permutation ({e})")))?;
    }
    Ok(layout)
}

/// Loss and accuracy of `model` over every batch of `loader`.
pub(crate) fn evaluate<B: RecurrentBackend>(
    model: &model::RecurrentClassifier<B>,
    loader: &Loader<B>,
) -> model::Evaluation {
    model.evaluate(
        loader
            .iter()
            .map(|batch| (batch.sequences, batch.lengths, batch.targets)),
    )
}
