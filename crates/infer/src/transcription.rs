//! A transcription run (CTC, trained on a pronouncing dictionary): its test words evaluated, and
//! words transcribed, greedily or by prefix beam search.

use burn::tensor::backend::Backend;
use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use data::{
    PronunciationConfig, Symbols, TranscriptionBatch, TranscriptionBatcher, TranscriptionItem,
    TranscriptionParts,
};
use model::ctc::{Decoding, Hypothesis, beam_search, greedy};
use model::{Evaluation, Input, SequenceModel, TranscriptionExamples, log_softmax};

use crate::{InferError, Run};

/// Why a word cannot be transcribed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// An empty word.
    #[error("word {index} is empty: give at least one letter")]
    Empty {
        /// Its position among the words given, from 1.
        index: usize,
    },
    /// A letter the run never saw.
    #[error("`{word}` holds `{symbol}`, which {run}'s symbols.json lacks (it knows {known})")]
    Unknown {
        /// The word.
        word: String,
        /// The unknown symbol.
        symbol: String,
        /// The run directory.
        run: PathBuf,
        /// The symbols it knows.
        known: String,
    },
    /// A beam of 0.
    #[error("--beam must be at least 1")]
    Beam,
}

/// One word's transcriptions, best first: one for greedy decoding, up to `n_best` for a beam.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The word.
    pub word: String,
    /// Phonemes and log-probabilities.
    pub hypotheses: Vec<(Vec<String>, f64)>,
}

impl Run {
    /// Whether the run is a CTC transcriber (`data.source: "pronunciations"`).
    pub fn is_transcription(&self) -> bool {
        self.data.source == data::DataSource::Pronunciations
    }

    /// A transcription run's symbols (`symbols.json`), checked against the model's sizes.
    pub fn symbols(&self) -> Result<Symbols, InferError> {
        let path = self.dir.join(Symbols::FILE);
        let symbols = Symbols::load(&path).map_err(|e| InferError::NotARun {
            dir: self.dir.clone(),
            message: format!("{e}; a transcription run keeps its letters and phonemes there"),
        })?;
        if Some(symbols.inputs.len()) != self.model.vocab_size
            || symbols.outputs.len() != self.model.num_classes
        {
            return Err(InferError::RunConfig {
                path,
                message: format!(
                    "holds {} input and {} output symbols, but the model reads {:?} token ids and predicts {} classes",
                    symbols.inputs.len(),
                    symbols.outputs.len(),
                    self.model.vocab_size,
                    self.model.num_classes
                ),
            });
        }
        Ok(symbols)
    }

    fn pronunciation_config(&self) -> Result<PronunciationConfig, InferError> {
        self.data
            .pronunciations
            .clone()
            .ok_or_else(|| InferError::RunConfig {
                path: self.dir.join("config.json"),
                message: "data.source is \"pronunciations\" but there is no `data.pronunciations` section".into(),
            })
    }
}

/// Which of a run's held-apart words to evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldApart {
    /// The validation words: where decoding settings (a beam width) are chosen.
    Validation,
    /// The test words: the reported figures.
    Test,
}

impl HeldApart {
    /// The set's name, as `infer eval` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::Test => "test",
        }
    }
}

/// The run's test or validation words (its dictionary read and split as training did; `dir`
/// overrides the run's `data.dir`), transcribed by `decoding`: word and phoneme error rates and the
/// mean CTC loss.
pub fn evaluate<B: Backend>(
    run: &Run,
    model: &SequenceModel<B>,
    dir: Option<&Path>,
    batch_size: usize,
    words: HeldApart,
    decoding: Decoding,
    device: &B::Device,
) -> Result<(PathBuf, Evaluation), InferError> {
    let settings = run.pronunciation_config()?;
    let dir = dir
        .map(Path::to_path_buf)
        .or_else(|| run.data.dir.clone())
        .ok_or_else(|| InferError::RunConfig {
            path: run.dir.join("config.json"),
            message: "the run names no data.dir: pass --data-dir DIR (the directory holding the dictionary)".into(),
        })?;
    let parts = TranscriptionParts::read(&dir, &settings)?;
    if parts.symbols != run.symbols()? {
        return Err(InferError::RunConfig {
            path: parts.path.clone(),
            message: format!(
                "its letters and phonemes differ from those {} was trained on ({}); evaluate on the dictionary it was trained on",
                run.dir.display(),
                Symbols::FILE
            ),
        });
    }
    let set = match words {
        HeldApart::Validation => &parts.valid,
        HeldApart::Test => &parts.test,
    };
    let batcher = TranscriptionBatcher::new(set);
    let items = &set.items;
    let batches = items.chunks(batch_size.max(1)).map(|chunk| {
        let batch: TranscriptionBatch<B> = batcher.batch(chunk.to_vec(), device);
        TranscriptionExamples {
            inputs: batch.inputs,
            lengths: batch.lengths,
            targets: batch.targets,
            words: batch.words,
        }
    });
    let result = model.evaluate_transcriptions(batches, &set.references, decoding);
    Ok((parts.path, result))
}

/// Transcribes `words` (each a string of the run's input symbols), in batches of `batch_size`:
/// greedy decoding, or prefix beam search of width `beam` keeping `n_best`.
pub fn transcribe<B: Backend>(
    run: &Run,
    model: &SequenceModel<B>,
    words: &[String],
    beam: Option<usize>,
    n_best: usize,
    device: &B::Device,
) -> Result<Vec<Transcription>, InferError> {
    if beam == Some(0) {
        return Err(InferError::Transcribe(TranscribeError::Beam));
    }
    let symbols = run.symbols()?;
    let layout = run.pronunciation_config()?.layout();
    let mut items = Vec::with_capacity(words.len());
    for (index, word) in words.iter().enumerate() {
        if word.is_empty() {
            return Err(InferError::Transcribe(TranscribeError::Empty {
                index: index + 1,
            }));
        }
        let letters: Vec<String> = word.chars().map(String::from).collect();
        let ids = symbols.input_ids(&letters).map_err(|symbol| {
            InferError::Transcribe(TranscribeError::Unknown {
                word: word.clone(),
                symbol: symbol.to_string(),
                run: run.dir.clone(),
                known: symbols.inputs[1..].concat(),
            })
        })?;
        items.push(TranscriptionItem {
            word: index,
            steps: layout.steps(&ids, 0),
            target: Vec::new(),
        });
    }
    let batcher = TranscriptionBatcher::default();
    let mut out = Vec::with_capacity(words.len());
    for (chunk, chunk_words) in items.chunks(256).zip(words.chunks(256)) {
        let TranscriptionBatch {
            inputs, lengths, ..
        } = batcher.batch(chunk.to_vec(), device);
        let longest = inputs.dims()[1];
        let logits = model.forward_steps_lengths(Input::Tokens(inputs), &lengths);
        let classes = logits.dims()[2];
        let log_probs: Vec<f32> = log_softmax(logits, 2)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("floats");
        for (row, (word, &length)) in chunk_words.iter().zip(&lengths).enumerate() {
            let row = &log_probs[row * longest * classes..][..length * classes];
            let hypotheses: Vec<Hypothesis> = match beam {
                None => vec![greedy(row, classes, 0)],
                Some(beam) => beam_search(row, classes, 0, beam, n_best),
            };
            out.push(Transcription {
                word: word.clone(),
                hypotheses: hypotheses
                    .into_iter()
                    .map(|h| {
                        let phonemes = h
                            .tokens
                            .iter()
                            .map(|&t| symbols.outputs[t].clone())
                            .collect();
                        (phonemes, h.log_prob)
                    })
                    .collect(),
            });
        }
    }
    Ok(out)
}
