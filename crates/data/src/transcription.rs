//! A pronouncing dictionary as transcription data: each pronunciation an example (the word's
//! letters laid out as input steps, its phonemes as the target), split by word, with the two
//! vocabularies a run keeps, and a batcher of padded examples.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::config::Config;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::pronunciation::{
    Part, Pronunciation, PronunciationError, StepLayout, Stress, part_of, read_cmudict, read_pairs,
    steps_needed, token_vocabulary,
};

/// The file format of a pronouncing dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DictionaryFormat {
    /// `word PH1 PH2 …`, alternates `word(2)`, `# comments` (CMUdict).
    #[default]
    Cmudict,
    /// `input tokens<TAB>output tokens`.
    Pairs,
}

/// How a pronouncing dictionary becomes transcription data (`data.source: "pronunciations"`).
#[derive(Config, Debug, PartialEq)]
pub struct PronunciationConfig {
    /// The dictionary's file name inside `data.dir`.
    #[config(default = "\"cmudict.dict\".to_string()")]
    pub file: String,
    /// Its format.
    #[config(default = "DictionaryFormat::Cmudict")]
    pub format: DictionaryFormat,
    /// CMUdict's stress digits: stripped (39 phonemes) or kept.
    #[config(default = "Stress::Strip")]
    pub stress: Stress,
    /// Share of the words that validate (chosen by a hash of the word: see `data::part_of`).
    #[config(default = 0.05)]
    pub validation_fraction: f64,
    /// Share of the words that test.
    #[config(default = 0.1)]
    pub test_fraction: f64,
    /// Input steps per letter: CTC emits one token a step at most.
    #[config(default = 2)]
    pub repeat: usize,
    /// Padding steps after the last letter.
    #[config(default = 1)]
    pub padding: usize,
}

impl PronunciationConfig {
    /// The layout of a word's letters as input steps.
    pub fn layout(&self) -> StepLayout {
        StepLayout {
            repeat: self.repeat,
            padding: self.padding,
        }
    }
}

/// The input and output symbols of a transcription run, saved with it: input id 0 is the padding
/// step, output id 0 CTC's blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbols {
    /// Input tokens (letters), `<pad>` first.
    pub inputs: Vec<String>,
    /// Output tokens (phonemes), `<blank>` first.
    pub outputs: Vec<String>,
}

impl Symbols {
    /// The file a run keeps them in.
    pub const FILE: &str = "symbols.json";
    /// The padding input token.
    pub const PAD: &str = "<pad>";
    /// CTC's blank.
    pub const BLANK: &str = "<blank>";

    /// The symbols of every pronunciation of a dictionary (inputs and outputs alike: the alphabet and
    /// the phoneme set, whichever part a word falls in).
    pub fn of(entries: &[Pronunciation]) -> Self {
        let mut inputs = vec![Self::PAD.to_string()];
        inputs.extend(token_vocabulary(entries.iter().map(|e| e.input.as_slice())));
        let mut outputs = vec![Self::BLANK.to_string()];
        outputs.extend(token_vocabulary(
            entries.iter().map(|e| e.output.as_slice()),
        ));
        Symbols { inputs, outputs }
    }

    /// The ids of `tokens` in `table`, or the first one it lacks.
    fn ids<'a>(table: &[String], tokens: &'a [String]) -> Result<Vec<u32>, &'a str> {
        tokens
            .iter()
            .map(|t| {
                table
                    .iter()
                    .position(|s| s == t)
                    .map(|i| i as u32)
                    .ok_or(t.as_str())
            })
            .collect()
    }

    /// The input ids of `tokens`, or the first token the vocabulary lacks.
    pub fn input_ids<'a>(&self, tokens: &'a [String]) -> Result<Vec<u32>, &'a str> {
        Self::ids(&self.inputs, tokens)
    }

    /// The output ids of `tokens`, or the first token the vocabulary lacks.
    pub fn output_ids<'a>(&self, tokens: &'a [String]) -> Result<Vec<u32>, &'a str> {
        Self::ids(&self.outputs, tokens)
    }

    /// Writes them as JSON.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            serde_json::to_string_pretty(self).expect("symbols serialize"),
        )
    }

    /// Reads them back.
    pub fn load(path: &Path) -> Result<Self, PronunciationError> {
        let text = std::fs::read_to_string(path).map_err(|cause| PronunciationError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        serde_json::from_str(&text).map_err(|e| PronunciationError::Line {
            path: path.to_path_buf(),
            line: e.line(),
            problem: format!(
                "not a symbols file ({e}); expected {{\"inputs\": [...], \"outputs\": [...]}}"
            ),
        })
    }
}

/// One example: a word's input steps and one of its pronunciations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionItem {
    /// Index of the word in its set's [`TranscriptionSet::words`].
    pub word: usize,
    /// Input ids, one per step.
    pub steps: Vec<u32>,
    /// Output ids (none the blank).
    pub target: Vec<u32>,
}

/// The examples of one part, and every pronunciation of each of its words (to score a word right
/// when the output equals any of them).
#[derive(Debug, Clone, Default)]
pub struct TranscriptionSet {
    /// The examples, in file order.
    pub items: Arc<Vec<TranscriptionItem>>,
    /// The words, in order of first appearance.
    pub words: Arc<Vec<String>>,
    /// Each word's pronunciations as output ids.
    pub references: Arc<Vec<Vec<Vec<u32>>>>,
}

impl Dataset<TranscriptionItem> for TranscriptionSet {
    fn get(&self, index: usize) -> Option<TranscriptionItem> {
        self.items.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

impl TranscriptionSet {
    /// Input steps of every example, for grouping batches by length.
    pub fn lengths(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.steps.len()).collect()
    }
}

/// A dictionary read and split by word, with its symbols.
#[derive(Debug, Clone)]
pub struct TranscriptionParts {
    /// Training examples.
    pub train: TranscriptionSet,
    /// Validation examples.
    pub valid: TranscriptionSet,
    /// Test examples.
    pub test: TranscriptionSet,
    /// The symbols.
    pub symbols: Symbols,
    /// The file read.
    pub path: PathBuf,
}

impl TranscriptionParts {
    /// Reads `dir/config.file` and splits it.
    pub fn read(dir: &Path, config: &PronunciationConfig) -> Result<Self, PronunciationError> {
        let path = dir.join(&config.file);
        let entries = match config.format {
            DictionaryFormat::Cmudict => read_cmudict(&path, config.stress)?,
            DictionaryFormat::Pairs => read_pairs(&path)?,
        };
        let symbols = Symbols::of(&entries);
        let layout = config.layout();
        let mut sets: [PartBuilder; 3] = Default::default();
        for entry in &entries {
            let part = match part_of(
                &entry.word,
                config.validation_fraction,
                config.test_fraction,
            ) {
                Part::Train => 0,
                Part::Validation => 1,
                Part::Test => 2,
            };
            let letters = symbols
                .input_ids(&entry.input)
                .expect("symbols of every entry");
            let target = symbols
                .output_ids(&entry.output)
                .expect("symbols of every entry");
            // Training gives a pronunciation longer than the layout allows the padding it needs;
            // evaluation reads the layout alone, as transcription will.
            let steps = if part == 0 {
                layout.training_steps(&letters, 0, steps_needed(&target))
            } else {
                layout.steps(&letters, 0)
            };
            sets[part].add(&entry.word, steps, target);
        }
        let [train, valid, test] = sets.map(PartBuilder::finish);
        Ok(Self {
            train,
            valid,
            test,
            symbols,
            path,
        })
    }
}

/// One part's examples as they are read.
#[derive(Default)]
struct PartBuilder {
    items: Vec<TranscriptionItem>,
    words: Vec<String>,
    references: Vec<Vec<Vec<u32>>>,
    index: std::collections::HashMap<String, usize>,
}

impl PartBuilder {
    fn add(&mut self, word: &str, steps: Vec<u32>, target: Vec<u32>) {
        let next = self.words.len();
        let index = *self.index.entry(word.to_string()).or_insert(next);
        if index == next {
            self.words.push(word.to_string());
            self.references.push(Vec::new());
        }
        self.references[index].push(target.clone());
        self.items.push(TranscriptionItem {
            word: index,
            steps,
            target,
        });
    }

    fn finish(self) -> TranscriptionSet {
        TranscriptionSet {
            items: Arc::new(self.items),
            words: Arc::new(self.words),
            references: Arc::new(self.references),
        }
    }
}

/// A batch of examples: input ids padded to the longest, each example's steps, targets and word.
#[derive(Debug, Clone)]
pub struct TranscriptionBatch<B: Backend> {
    /// `[batch, steps]`, padded with id 0.
    pub inputs: Tensor<B, 2, Int>,
    /// Each example's steps.
    pub lengths: Vec<usize>,
    /// Each example's output ids.
    pub targets: Vec<Vec<usize>>,
    /// Each example's word index in its set.
    pub words: Vec<usize>,
    /// Every pronunciation of each word of the set, by word index.
    pub references: Arc<Vec<Vec<Vec<u32>>>>,
}

/// Pads examples of one set into [`TranscriptionBatch`]es.
#[derive(Debug, Clone, Default)]
pub struct TranscriptionBatcher {
    references: Arc<Vec<Vec<Vec<u32>>>>,
}

impl TranscriptionBatcher {
    /// A batcher of `set`'s examples.
    pub fn new(set: &TranscriptionSet) -> Self {
        Self {
            references: set.references.clone(),
        }
    }
}

impl<B: Backend> Batcher<B, TranscriptionItem, TranscriptionBatch<B>> for TranscriptionBatcher {
    fn batch(&self, items: Vec<TranscriptionItem>, device: &B::Device) -> TranscriptionBatch<B> {
        let steps = items.iter().map(|i| i.steps.len()).max().unwrap_or(0);
        let mut ids = vec![0i64; items.len() * steps];
        for (row, item) in items.iter().enumerate() {
            for (t, &id) in item.steps.iter().enumerate() {
                ids[row * steps + t] = i64::from(id);
            }
        }
        TranscriptionBatch {
            inputs: Tensor::from_data(TensorData::new(ids, [items.len(), steps]), device),
            lengths: items.iter().map(|i| i.steps.len()).collect(),
            targets: items
                .iter()
                .map(|i| i.target.iter().map(|&t| t as usize).collect())
                .collect(),
            words: items.iter().map(|i| i.word).collect(),
            references: self.references.clone(),
        }
    }
}
