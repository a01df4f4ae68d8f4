//! The one data-source seam of training: MNIST, a directory of `.ts` files, a text file or a
//! pronouncing dictionary, read,
//! split and checked against the model config, then served as loaders of [`Batch`]es, which is all
//! that `fit` sees.

use burn::tensor::backend::{AutodiffBackend, Backend};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use data::{
    DataSource, EpochLoader, MnistBatcher, MnistDataset, MnistFiles, SequenceBatch, SequenceInfo,
    SequenceLayout, Split, Streams, Symbols, TextBatch, TextBatcher, TextParts, TextWindow,
    TranscriptionBatcher, TranscriptionItem, TranscriptionParts, TranscriptionSet, TsBatcher,
    TsDataset, TsFiles, Vocabulary, split_indices, train_validation_split,
};

use crate::artifacts::{RunDir, write_atomically};
use crate::config::TrainConfig;
use crate::error::{TrainError, io_error};
use crate::task::{Batch, Loader};

/// The loaders of a run: training (shuffled, on the autodiff backend), validation, and the test set
/// when validation data is held out of the training set.
pub(crate) struct Loaders<B: AutodiffBackend> {
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
    Text {
        train: Streams,
        valid: Streams,
        test: Streams,
        vocabulary: Vocabulary,
    },
    Transcription {
        train: TranscriptionSet,
        valid: TranscriptionSet,
        test: TranscriptionSet,
        symbols: Symbols,
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
            DataSource::Text => Self::text(config),
            DataSource::Pronunciations => Self::pronunciations(config),
        }
    }

    /// Training examples per epoch (predicted characters for a text).
    pub fn train_items(&self) -> usize {
        match &self.sets {
            Sets::Mnist { train, .. } => train.len(),
            Sets::Ts { train, .. } => train.len(),
            Sets::Text { train, .. } => train.predictions(),
            Sets::Transcription { train, .. } => train.len(),
        }
    }

    /// Validation examples (predicted characters for a text).
    pub fn valid_items(&self) -> usize {
        match &self.sets {
            Sets::Mnist { valid, .. } => valid.len(),
            Sets::Ts { valid, .. } => valid.len(),
            Sets::Text { valid, .. } => valid.predictions(),
            Sets::Transcription { valid, .. } => valid.len(),
        }
    }

    /// Optimizer steps per epoch.
    pub fn batches_per_epoch(&self, config: &TrainConfig) -> usize {
        match &self.sets {
            // A text epoch is one window of every stream per step.
            Sets::Text { train, .. } => train.len(),
            // The loader keeps the last, partial batch.
            _ => self.train_items().div_ceil(config.batch_size),
        }
    }

    /// A plain text: the characters of the training part make the vocabulary; the split is
    /// nanoGPT's (the first `1 - test_fraction` trains, its end validates, the rest tests); the
    /// model reads token ids and predicts at every step, its sizes taken from the vocabulary.
    fn text(config: &mut TrainConfig) -> Result<Self, TrainError> {
        let text_config = config.data.text.clone().ok_or_else(|| {
            TrainError::Config(
                "data.source is \"text\" but the `data.text` section is missing".into(),
            )
        })?;
        let dir = config.data.dir.clone().ok_or_else(|| {
            TrainError::Config(
                "data.source is \"text\" but no directory is given: set data.dir or pass --data-dir DIR (the directory holding data.text.file)".into(),
            )
        })?;
        let path = dir.join(&text_config.file);
        let window = text_config.window;
        let TextParts {
            split,
            train: train_text,
            valid: valid_text,
            test: test_text,
        } = TextParts::read(&path, &text_config)?;
        let vocabulary = Vocabulary::from_text(&train_text);
        let what = |name: &str| format!("the {name} part of {}", path.display());
        let encode = |text: &str, name: &str| -> Result<Arc<Vec<u32>>, TrainError> {
            Ok(Arc::new(vocabulary.encode(text, &what(name))?))
        };
        let (train, valid, test) = (
            encode(&train_text, "training")?,
            encode(&valid_text, "validation")?,
            encode(&test_text, "test")?,
        );
        token_model(
            &mut config.model,
            (vocabulary.len(), "distinct characters in its training part"),
            (vocabulary.len(), "distinct characters in its training part"),
            ("text", "a language model"),
            &path,
        )?;
        let validation = format!(
            "characters {}..{} of {} (the end of the training part), the state carried through",
            split.valid.start,
            split.valid.end,
            path.display()
        );
        Ok(Self {
            sets: Sets::Text {
                train: Streams::new(train, config.batch_size, window),
                valid: Streams::new(valid, config.eval_batch_size, window),
                test: Streams::new(test, config.eval_batch_size, window),
                vocabulary,
            },
            files: vec![path],
            validation,
        })
    }

    /// A pronouncing dictionary: split by word, its letters and phonemes the two vocabularies (the
    /// model's token count and class count, blank included), a prediction at every step for CTC.
    fn pronunciations(config: &mut TrainConfig) -> Result<Self, TrainError> {
        let settings = config.data.pronunciations.clone().ok_or_else(|| {
            TrainError::Config(
                "data.source is \"pronunciations\" but the `data.pronunciations` section is missing".into(),
            )
        })?;
        let dir = config.data.dir.clone().ok_or_else(|| {
            TrainError::Config(
                "data.source is \"pronunciations\" but no directory is given: set data.dir or pass --data-dir DIR (the directory holding data.pronunciations.file)".into(),
            )
        })?;
        let parts = TranscriptionParts::read(&dir, &settings)?;
        let path = parts.path.clone();
        for (name, set) in [
            ("training", &parts.train),
            ("validation", &parts.valid),
            ("test", &parts.test),
        ] {
            if set.items.is_empty() {
                return Err(TrainError::Config(format!(
                    "{}: no word falls in the {name} part (validation_fraction {}, test_fraction {}); the dictionary is too small for this split",
                    path.display(),
                    settings.validation_fraction,
                    settings.test_fraction
                )));
            }
        }
        token_model(
            &mut config.model,
            (
                parts.symbols.inputs.len(),
                "distinct input symbols and the padding",
            ),
            (
                parts.symbols.outputs.len(),
                "distinct phonemes and the blank",
            ),
            ("pronunciations", "a CTC transcriber"),
            &path,
        )?;
        let validation = format!(
            "{} words of {} ({:.0} % by a hash of the word), greedy transcription; the accuracy column is the share of pronunciations transcribed exactly",
            parts.valid.words.len(),
            path.display(),
            100.0 * settings.validation_fraction
        );
        Ok(Self {
            sets: Sets::Transcription {
                train: parts.train,
                valid: parts.valid,
                test: parts.test,
                symbols: parts.symbols,
            },
            files: vec![path],
            validation,
        })
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
        let (train_full, test) = files.load(data.missing)?;
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
        let held_out = data.held_out(train_full.len());
        let (train, valid, test, validation) = if held_out > 0 {
            let (train, valid) = split_indices(train_full.len(), held_out, data.split_seed)?;
            let what = format!(
                "{} training examples of {} held out (split seed {})",
                held_out,
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
    pub fn loaders<B: AutodiffBackend>(
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
            Sets::Text {
                train,
                valid,
                test,
                vocabulary,
            } => {
                let path = run_dir.root.join(Vocabulary::FILE);
                vocabulary.save(&path)?;
                Ok(text_loaders::<B>(
                    config,
                    start_epoch,
                    device,
                    train,
                    valid,
                    test,
                ))
            }
            Sets::Transcription {
                train,
                valid,
                test,
                symbols,
            } => {
                let path = run_dir.root.join(Symbols::FILE);
                symbols
                    .save(&path)
                    .map_err(|e| io_error(&path, format!("cannot write the symbols ({e})")))?;
                Ok(transcription_loaders::<B>(
                    config,
                    start_epoch,
                    device,
                    [train, valid, test],
                ))
            }
        }
    }
}

/// The loaders of a text: each reads its windows in order, one window of every stream per batch,
/// with a state carry of its own.
fn text_loaders<B: AutodiffBackend>(
    config: &TrainConfig,
    start_epoch: usize,
    device: &B::Device,
    train: &Streams,
    valid: &Streams,
    test: &Streams,
) -> Loaders<B> {
    let train_loader = EpochLoader::new(
        Arc::new(train.clone()),
        Arc::new(TextBatches(TextBatcher::<B>::new())) as Arc<dyn Batcher<B, TextWindow, Batch<B>>>,
        1,
        device.clone(),
    )
    .starting_at_epoch(start_epoch + 1)
    .on_epoch_start(reseed::<B>(device.clone(), config.seed));
    let eval = |set: &Streams| -> Loader<B::InnerBackend> {
        Arc::new(EpochLoader::new(
            Arc::new(set.clone()),
            Arc::new(TextBatches(TextBatcher::<B::InnerBackend>::new()))
                as Arc<dyn Batcher<B::InnerBackend, TextWindow, Batch<B::InnerBackend>>>,
            1,
            device.clone(),
        ))
    };
    Loaders {
        train: Arc::new(train_loader),
        valid: eval(valid),
        test: Some(eval(test)),
    }
}

/// The loaders of a pronouncing dictionary: training shuffled per epoch and grouped by length,
/// validation and test in order.
fn transcription_loaders<B: AutodiffBackend>(
    config: &TrainConfig,
    start_epoch: usize,
    device: &B::Device,
    [train, valid, test]: [&TranscriptionSet; 3],
) -> Loaders<B> {
    let train_loader = EpochLoader::new(
        Arc::new(train.clone()),
        Arc::new(Transcriptions(TranscriptionBatcher::new(train)))
            as Arc<dyn Batcher<B, TranscriptionItem, Batch<B>>>,
        config.batch_size,
        device.clone(),
    )
    .shuffled(config.seed)
    .starting_at_epoch(start_epoch + 1)
    .on_epoch_start(reseed::<B>(device.clone(), config.seed))
    .grouped_by_length(train.lengths());
    let eval = |set: &TranscriptionSet| -> Loader<B::InnerBackend> {
        Arc::new(EpochLoader::new(
            Arc::new(set.clone()),
            Arc::new(Transcriptions(TranscriptionBatcher::new(set)))
                as Arc<dyn Batcher<B::InnerBackend, TranscriptionItem, Batch<B::InnerBackend>>>,
            config.eval_batch_size,
            device.clone(),
        ))
    };
    Loaders {
        train: Arc::new(train_loader),
        valid: eval(valid),
        test: Some(eval(test)),
    }
}

/// A batcher of transcription examples, as the [`Batch`] that `fit` reads.
struct Transcriptions(TranscriptionBatcher);

impl<B: Backend> Batcher<B, TranscriptionItem, Batch<B>> for Transcriptions {
    fn batch(&self, items: Vec<TranscriptionItem>, device: &B::Device) -> Batch<B> {
        Batch::Transcription(self.0.batch(items, device))
    }
}

/// A batcher of labelled sequences, as the [`Batch`] that `fit` reads.
struct AsBatch<Bt>(Arc<Bt>);

impl<B, I, Bt> Batcher<B, I, Batch<B>> for AsBatch<Bt>
where
    B: Backend,
    Bt: Batcher<B, I, SequenceBatch<B>>,
{
    fn batch(&self, items: Vec<I>, device: &B::Device) -> Batch<B> {
        Batch::Sequences(self.0.batch(items, device))
    }
}

/// A batcher of text windows, as the [`Batch`] that `fit` reads.
struct TextBatches<B: Backend>(TextBatcher<B>);

impl<B: Backend> Batcher<B, TextWindow, Batch<B>> for TextBatches<B> {
    fn batch(&self, items: Vec<TextWindow>, device: &B::Device) -> Batch<B> {
        let batch: TextBatch<B> = self.0.batch(items, device);
        Batch::Text(batch)
    }
}

/// A model that reads token ids and predicts at every step (a text's, a dictionary's): its token
/// count and class count, each `(size, what the data has that many of)`, filled in from the data or
/// checked against it, and its head checked.
fn token_model(
    model: &mut model::ModelConfig,
    (tokens, tokens_are): (usize, &str),
    (classes, classes_are): (usize, &str),
    (source, trains): (&str, &str),
    path: &Path,
) -> Result<(), TrainError> {
    resolve_size(
        &mut model.num_classes,
        "num_classes",
        classes,
        classes_are,
        path,
    )?;
    let mut vocab = model.vocab_size.unwrap_or(0);
    resolve_size(&mut vocab, "vocab_size", tokens, tokens_are, path)?;
    model.vocab_size = Some(vocab);
    if model.head != model::Head::EveryStep {
        return Err(TrainError::Config(format!(
            "data.source \"{source}\" trains {trains}, which predicts at every step: set model.head to \"every_step\""
        )));
    }
    Ok(())
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
    B: AutodiffBackend,
    I: Send + Sync + 'static,
    D: Dataset<I> + 'static,
    Bt: Batcher<B, I, SequenceBatch<B>>
        + Batcher<B::InnerBackend, I, SequenceBatch<B::InnerBackend>>
        + 'static,
{
    let mut train_loader = EpochLoader::new(
        Arc::new(train),
        Arc::new(AsBatch(batcher.clone())) as Arc<dyn Batcher<B, I, Batch<B>>>,
        config.batch_size,
        device.clone(),
    )
    .shuffled(config.seed)
    .starting_at_epoch(start_epoch + 1)
    .on_epoch_start(reseed::<B>(device.clone(), config.seed));
    if let Some(lengths) = lengths {
        train_loader = train_loader.grouped_by_length(lengths);
    }
    let eval = |set: D| -> Loader<B::InnerBackend> {
        Arc::new(EpochLoader::new(
            Arc::new(set),
            Arc::new(AsBatch(batcher.clone()))
                as Arc<dyn Batcher<B::InnerBackend, I, Batch<B::InnerBackend>>>,
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

/// The random draws of training (dropout masks) of every epoch after the first start from a seed of
/// their own, so that a resumed run draws what the uninterrupted one drew; the first continues from
/// the initialization's. Run by the training loader as an epoch's iteration begins, on the training
/// thread: Burn's renderer, which sees the end of an epoch, runs on a thread of its own and would
/// reseed at some point during the next epoch's first batches.
pub(crate) fn reseed<B: Backend>(
    device: B::Device,
    seed: u64,
) -> impl Fn(usize) + Send + Sync + 'static {
    move |epoch| {
        if epoch > 1 {
            B::seed(&device, epoch_seed(seed, epoch));
        }
    }
}

/// The seed of epoch `epoch`'s random draws: mixed differently from the shuffle's, so that the two
/// streams are unrelated.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}
