//! Pronouncing dictionaries: spellings in, pronunciations out, for transcription with CTC. CMUdict's
//! format (`word PH1 PH2 …`, alternates as `word(2)`, trailing `# comments`) and a general pairs
//! format (one example a line: input tokens, a tab, output tokens); a split by word that keeps every
//! pronunciation of a word on one side; and the layout of a word's letters as input steps.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One pronunciation of one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pronunciation {
    /// The word, without its alternate marker (`(2)`).
    pub word: String,
    /// The input tokens: the word's characters (CMUdict) or the pair's input tokens.
    pub input: Vec<String>,
    /// The output tokens: phonemes.
    pub output: Vec<String>,
}

/// What a pronouncing dictionary's lines can get wrong, with the file and line.
#[derive(Debug, thiserror::Error)]
pub enum PronunciationError {
    /// The file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A line that is not what the format says.
    #[error("{path}:{line}: {problem}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// No example at all.
    #[error(
        "{path} holds no pronunciation; expected lines like `word PH1 PH2` (CMUdict) or `i n p u t<TAB>O U T` (pairs)"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Whether CMUdict's stress digits (`AH0`, `EY1`) are kept: stripped, the 39 phonemes the literature
/// scores on; kept, 70-odd symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stress {
    /// `AH0` → `AH`.
    #[default]
    Strip,
    /// `AH0` stays `AH0`.
    Keep,
}

/// Reads a dictionary in CMUdict's format.
pub fn read_cmudict(path: &Path, stress: Stress) -> Result<Vec<Pronunciation>, PronunciationError> {
    let text = read(path)?;
    parse_cmudict(&text, path, stress)
}

/// Reads a pairs file: `input tokens<TAB>output tokens`, tokens separated by spaces.
pub fn read_pairs(path: &Path) -> Result<Vec<Pronunciation>, PronunciationError> {
    let text = read(path)?;
    parse_pairs(&text, path)
}

fn read(path: &Path) -> Result<String, PronunciationError> {
    std::fs::read_to_string(path).map_err(|cause| PronunciationError::Read {
        path: path.to_path_buf(),
        cause,
    })
}

/// CMUdict's lines from `text` (`path` names it in errors); blank lines and whole-line comments are
/// skipped.
pub fn parse_cmudict(
    text: &str,
    path: &Path,
    stress: Stress,
) -> Result<Vec<Pronunciation>, PronunciationError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let error = |problem: String| PronunciationError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            problem,
        };
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let headword = fields.next().expect("a non-empty line has a field");
        let word = match headword.find('(') {
            Some(open) if headword.ends_with(')') => &headword[..open],
            Some(_) => {
                return Err(error(format!(
                    "`{headword}`: an alternate is written `word(2)`"
                )));
            }
            None => headword,
        };
        if word.is_empty() {
            return Err(error(format!("`{headword}` names no word")));
        }
        let output: Vec<String> = fields
            .map(|phoneme| match stress {
                Stress::Strip => phoneme
                    .trim_end_matches(|c: char| c.is_ascii_digit())
                    .to_string(),
                Stress::Keep => phoneme.to_string(),
            })
            .collect();
        if output.is_empty() {
            return Err(error(format!(
                "`{word}` has no pronunciation; expected `{word} PH1 PH2 …`"
            )));
        }
        if let Some(bad) = output.iter().find(|p| p.is_empty()) {
            return Err(error(format!("`{word}`: an empty phoneme `{bad}`")));
        }
        out.push(Pronunciation {
            word: word.to_string(),
            input: word.chars().map(String::from).collect(),
            output,
        });
    }
    if out.is_empty() {
        return Err(PronunciationError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Pairs from `text`: each non-blank line `input tokens<TAB>output tokens`; the word is the input
/// tokens joined by spaces.
pub fn parse_pairs(text: &str, path: &Path) -> Result<Vec<Pronunciation>, PronunciationError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let error = |problem: &str| PronunciationError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            problem: problem.to_string(),
        };
        if line.trim().is_empty() {
            continue;
        }
        let Some((input, output)) = line.split_once('\t') else {
            return Err(error(
                "no tab; a pairs line is `input tokens<TAB>output tokens`",
            ));
        };
        let input: Vec<String> = input.split_whitespace().map(String::from).collect();
        let output: Vec<String> = output.split_whitespace().map(String::from).collect();
        if input.is_empty() {
            return Err(error("no input tokens before the tab"));
        }
        if output.is_empty() {
            return Err(error("no output tokens after the tab"));
        }
        out.push(Pronunciation {
            word: input.join(" "),
            input,
            output,
        });
    }
    if out.is_empty() {
        return Err(PronunciationError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// Which part of the data a word belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Trains.
    Train,
    /// Chooses epochs, schedules and the kept model.
    Validation,
    /// Reported once per finished run.
    Test,
}

/// The part of `word`, from the 64-bit FNV-1a hash of its bytes: the hash modulo 10 000 below
/// `test_fraction · 10 000` tests, the next `validation_fraction · 10 000` validate, the rest train.
/// Every pronunciation of a word lands on the same side, the same on every machine, and a word's part
/// does not depend on which other words the file holds.
pub fn part_of(word: &str, validation_fraction: f64, test_fraction: f64) -> Part {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in word.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let bucket = (hash % 10_000) as f64;
    if bucket < test_fraction * 10_000.0 {
        Part::Test
    } else if bucket < (test_fraction + validation_fraction) * 10_000.0 {
        Part::Validation
    } else {
        Part::Train
    }
}

/// The distinct tokens of `sequences`, sorted: a vocabulary whose index is the token's id.
pub fn token_vocabulary<'a>(sequences: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let set: BTreeSet<&String> = sequences.into_iter().flatten().collect();
    set.into_iter().cloned().collect()
}

/// How a word's input tokens become steps: each token read `repeat` times, then `padding` steps of
/// a padding token. CTC emits at most one output token a step, and a repeated output needs a blank
/// step between its two: a pronunciation longer than its spelling (`x` → `EH K S`) needs more steps
/// than letters. The same layout at training and at transcription time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLayout {
    /// Steps per input token (at least 1).
    pub repeat: usize,
    /// Padding steps after the last token.
    pub padding: usize,
}

impl StepLayout {
    /// The steps of `tokens` (token ids), `pad` filling the padding steps.
    pub fn steps(&self, tokens: &[u32], pad: u32) -> Vec<u32> {
        let mut steps = Vec::with_capacity(tokens.len() * self.repeat + self.padding);
        for &t in tokens {
            steps.extend(std::iter::repeat_n(t, self.repeat.max(1)));
        }
        steps.extend(std::iter::repeat_n(pad, self.padding));
        steps
    }

    /// The steps to train on a pronunciation that needs `needed` steps ([`steps_needed`]): the
    /// layout's, then more padding steps where the layout gives fewer. In CMUdict that is a few dozen
    /// abbreviations read as words (`aol` → `AH M ER IH K AH …` needs 11 steps, 3 letters give 7 at
    /// 2 + 1); they are kept, not dropped. Transcription uses the layout alone.
    pub fn training_steps(&self, tokens: &[u32], pad: u32, needed: usize) -> Vec<u32> {
        let mut steps = self.steps(tokens, pad);
        if steps.len() < needed {
            steps.resize(needed, pad);
        }
        steps
    }

    /// Steps for an input of `tokens` tokens.
    pub fn len(&self, tokens: usize) -> usize {
        tokens * self.repeat.max(1) + self.padding
    }
}

/// The fewest steps CTC needs to emit `output`: one a token, and a blank between two equal tokens
/// in a row.
pub fn steps_needed<T: PartialEq>(output: &[T]) -> usize {
    output.len() + output.windows(2).filter(|w| w[0] == w[1]).count()
}
