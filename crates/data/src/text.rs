//! Plain UTF-8 text for character language models: the file read and checked, its character
//! vocabulary, the usual split, and `B` contiguous streams read `T` characters at a time.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

/// The target of a position that predicts nothing (past the end of a stream): excluded from the
/// loss's sum and count, as PyTorch's `ignore_index`.
pub const IGNORE_TARGET: i64 = -1;

/// Why a text could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The file could not be read.
    #[error("cannot read text file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file holds nothing.
    #[error("text file {path} is empty; a language model needs a text to learn from")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is not UTF-8.
    #[error(
        "text file {path} is not UTF-8: invalid byte at offset {offset}; convert it (iconv -t UTF-8) first"
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A part of the split is shorter than the model needs.
    #[error("{what} holds {chars} characters, fewer than {needed}: {advice}")]
    TooShort {
        /// Which part.
        what: String,
        /// Its characters.
        chars: usize,
        /// The minimum.
        needed: usize,
        /// What to change.
        advice: String,
    },
    /// Characters the vocabulary lacks.
    #[error(
        "{what} has characters the model's vocabulary lacks: {chars}; use only characters of the training text"
    )]
    UnknownChars {
        /// Whose characters.
        what: String,
        /// The characters, quoted.
        chars: String,
    },
    /// A saved vocabulary could not be read or written.
    #[error("vocabulary {path}: {message}")]
    Vocabulary {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Reads a whole text file, checked: not empty, UTF-8 (the first bad byte's offset otherwise).
pub fn read_text(path: &Path) -> Result<String, TextError> {
    let bytes = std::fs::read(path).map_err(|cause| TextError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    if bytes.is_empty() {
        return Err(TextError::Empty {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|e| TextError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// The characters a model reads and writes: the sorted distinct characters of its training text,
/// each one's index its token id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    chars: Vec<char>,
}

impl Vocabulary {
    /// The file in which a run keeps its vocabulary.
    pub const FILE: &str = "vocab.json";

    /// The sorted distinct characters of `text`.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self { chars }
    }

    /// A vocabulary of these characters, in this order (an imported model's); duplicates refused.
    pub fn from_chars(chars: Vec<char>) -> Result<Self, String> {
        let mut seen = chars.clone();
        seen.sort_unstable();
        if let Some(pair) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("the character {:?} appears twice", pair[0]));
        }
        if chars.is_empty() {
            return Err("it holds no character".into());
        }
        Ok(Self { chars })
    }

    /// Characters, in token-id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// How many characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether it holds no character.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The token id of `c`, if the vocabulary has it.
    pub fn id(&self, c: char) -> Option<u32> {
        self.chars
            .binary_search(&c)
            .ok()
            .map(|i| i as u32)
            .or_else(|| {
                // An imported vocabulary may be in any order.
                self.chars.iter().position(|&x| x == c).map(|i| i as u32)
            })
    }

    /// The character of token `id`.
    pub fn char(&self, id: usize) -> char {
        self.chars[id]
    }

    /// Token ids of `text`; the characters it lacks are named (`what` says whose text it is).
    pub fn encode(&self, text: &str, what: &str) -> Result<Vec<u32>, TextError> {
        let mut missing: Vec<char> = Vec::new();
        let ids: Vec<u32> = text
            .chars()
            .map(|c| {
                self.id(c).unwrap_or_else(|| {
                    if !missing.contains(&c) {
                        missing.push(c);
                    }
                    0
                })
            })
            .collect();
        if missing.is_empty() {
            Ok(ids)
        } else {
            Err(TextError::UnknownChars {
                what: what.to_string(),
                chars: missing
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// Writes the vocabulary as JSON: `{"chars": ["\n", " ", "!", …]}`.
    pub fn save(&self, path: &Path) -> Result<(), TextError> {
        let json = serde_json::json!({
            "chars": self.chars.iter().map(|c| c.to_string()).collect::<Vec<_>>()
        });
        std::fs::write(path, format!("{json:#}\n")).map_err(|e| TextError::Vocabulary {
            path: path.to_path_buf(),
            message: format!("cannot write it ({e})"),
        })
    }

    /// Reads a vocabulary written by [`save`](Self::save) (or by hand: one string of one character
    /// each).
    pub fn load(path: &Path) -> Result<Self, TextError> {
        let bad = |message: String| TextError::Vocabulary {
            path: path.to_path_buf(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
        #[derive(serde::Deserialize)]
        struct File {
            chars: Vec<String>,
        }
        let file: File = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "{e}; expected {{\"chars\": [\"a\", \"b\", …]}}, one character per string"
            ))
        })?;
        let chars = file
            .chars
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => Ok(c),
                    _ => Err(bad(format!(
                        "entry {i} is {s:?}, not exactly one character"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_chars(chars).map_err(bad)
    }
}

/// Where the parts of a text lie, in characters: the first `1 - test_fraction` trains (its last
/// `validation_chars` set apart for validation), the rest tests — nanoGPT's `shakespeare_char` split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSplit {
    /// Characters that train.
    pub train: Range<usize>,
    /// Characters that validate (the end of the training part).
    pub valid: Range<usize>,
    /// Characters that give the reported figure.
    pub test: Range<usize>,
}

impl TextSplit {
    /// The split of a text of `len` characters. `test_fraction` in (0, 1).
    pub fn new(len: usize, test_fraction: f64, validation_chars: usize) -> Self {
        // nanoGPT: train = data[:int(n * 0.9)].
        let train_end = (len as f64 * (1.0 - test_fraction)) as usize;
        let valid_start = train_end.saturating_sub(validation_chars);
        Self {
            train: 0..valid_start,
            valid: valid_start..train_end,
            test: train_end..len,
        }
    }
}

/// A text file read and split ([`TextSplit`]), each part checked to be long enough: what both
/// training and evaluation read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextParts {
    /// Where the parts lie, in characters.
    pub split: TextSplit,
    /// The training part: at least one window and the character after it.
    pub train: String,
    /// The validation part: at least two characters.
    pub valid: String,
    /// The held-out part: at least two characters.
    pub test: String,
}

impl TextParts {
    /// Reads `path` ([`read_text`]) and splits it as `config` says, every part checked.
    pub fn read(path: &Path, config: &crate::TextConfig) -> Result<Self, TextError> {
        let (chars, split) = split_file(path, config)?;
        Ok(Self {
            train: part(
                path,
                &chars,
                &split.train,
                "training",
                config.window + 1,
                "the training part must hold one window and the character after it; use a longer text, or lower data.text.window or data.text.validation_chars",
            )?,
            valid: part(
                path,
                &chars,
                &split.valid,
                "validation",
                2,
                "raise data.text.validation_chars",
            )?,
            test: held_out(path, &chars, &split)?,
            split,
        })
    }

    /// The held-out part of `path` alone (evaluation needs nothing else), checked.
    pub fn read_test(path: &Path, config: &crate::TextConfig) -> Result<String, TextError> {
        let (chars, split) = split_file(path, config)?;
        held_out(path, &chars, &split)
    }
}

fn split_file(
    path: &Path,
    config: &crate::TextConfig,
) -> Result<(Vec<char>, TextSplit), TextError> {
    let chars: Vec<char> = read_text(path)?.chars().collect();
    let split = TextSplit::new(chars.len(), config.test_fraction, config.validation_chars);
    Ok((chars, split))
}

fn held_out(path: &Path, chars: &[char], split: &TextSplit) -> Result<String, TextError> {
    part(
        path,
        chars,
        &split.test,
        "test",
        2,
        "raise data.text.test_fraction, or use a longer text",
    )
}

/// The characters of `range`, or the error that it is shorter than `needed`.
fn part(
    path: &Path,
    chars: &[char],
    range: &Range<usize>,
    what: &str,
    needed: usize,
    advice: &str,
) -> Result<String, TextError> {
    if range.len() < needed {
        return Err(TextError::TooShort {
            what: format!(
                "the {what} part of {} (characters {}..{})",
                path.display(),
                range.start,
                range.end
            ),
            chars: range.len(),
            needed,
            advice: advice.to_string(),
        });
    }
    Ok(chars[range.clone()].iter().collect())
}

/// A token sequence cut into `streams` contiguous streams, each read `window` positions at a time:
/// window `w` holds, for every stream, the next `window` inputs and the token after each (its
/// target). Every token but the first is predicted exactly once; positions past a stream's end (the
/// last stream's tail) have the target [`IGNORE_TARGET`]. A stream's state carries from one window
/// to the next, so window order matters: this dataset is read in order.
#[derive(Debug, Clone)]
pub struct Streams {
    tokens: Arc<Vec<u32>>,
    streams: usize,
    window: usize,
    /// Predictions per stream (the last may have fewer).
    stream_len: usize,
}

/// One window of every stream: `[streams, steps]` inputs and targets, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextWindow {
    /// The window's index in its pass (0: the streams start from a fresh state).
    pub index: usize,
    /// Streams (rows).
    pub streams: usize,
    /// Steps (columns); `window`, or fewer in the last window.
    pub steps: usize,
    /// Input token ids.
    pub inputs: Vec<i64>,
    /// Target token ids, [`IGNORE_TARGET`] where nothing is predicted.
    pub targets: Vec<i64>,
}

impl Streams {
    /// `tokens` (at least two) cut into at most `streams` streams of `window`-step windows. Fewer
    /// streams are used when there are fewer predictions than streams.
    pub fn new(tokens: Arc<Vec<u32>>, streams: usize, window: usize) -> Self {
        assert!(tokens.len() >= 2, "a stream needs at least two tokens");
        assert!(
            streams > 0 && window > 0,
            "streams and window must be positive"
        );
        let predictions = tokens.len() - 1;
        let streams = streams.min(predictions);
        Self {
            tokens,
            streams,
            window,
            stream_len: predictions.div_ceil(streams),
        }
    }

    /// Streams read side by side.
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Tokens predicted in one pass: every token but the first.
    pub fn predictions(&self) -> usize {
        self.tokens.len() - 1
    }
}

impl Dataset<TextWindow> for Streams {
    fn get(&self, index: usize) -> Option<TextWindow> {
        let start = index * self.window;
        if start >= self.stream_len {
            return None;
        }
        let steps = self.window.min(self.stream_len - start);
        let predictions = self.predictions();
        let mut inputs = Vec::with_capacity(self.streams * steps);
        let mut targets = Vec::with_capacity(self.streams * steps);
        for b in 0..self.streams {
            let end = ((b + 1) * self.stream_len).min(predictions);
            for t in 0..steps {
                let p = b * self.stream_len + start + t;
                if p < end {
                    inputs.push(i64::from(self.tokens[p]));
                    targets.push(i64::from(self.tokens[p + 1]));
                } else {
                    inputs.push(0);
                    targets.push(IGNORE_TARGET);
                }
            }
        }
        Some(TextWindow {
            index,
            streams: self.streams,
            steps,
            inputs,
            targets,
        })
    }

    fn len(&self) -> usize {
        self.stream_len.div_ceil(self.window)
    }
}

/// The recurrent state a pass carries from one window to the next, opaque here: the model puts its
/// final state (detached) after each window and takes it before the next. Clones share it.
#[derive(Debug, Clone)]
pub struct StateCarry<B: Backend>(Arc<Mutex<Vec<Tensor<B, 2>>>>);

impl<B: Backend> Default for StateCarry<B> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<B: Backend> StateCarry<B> {
    /// Takes the carried state, leaving nothing (empty: start from zeros).
    pub fn take(&self) -> Vec<Tensor<B, 2>> {
        std::mem::take(&mut *self.0.lock().expect("state carry lock"))
    }

    /// Keeps `state` for the next window.
    pub fn put(&self, state: Vec<Tensor<B, 2>>) {
        *self.0.lock().expect("state carry lock") = state;
    }
}

/// One window of a text pass on a device.
#[derive(Debug, Clone)]
pub struct TextBatch<B: Backend> {
    /// Input token ids `[streams, steps]`.
    pub inputs: Tensor<B, 2, Int>,
    /// Target token ids `[streams, steps]`, [`IGNORE_TARGET`] where nothing is predicted.
    pub targets: Tensor<B, 2, Int>,
    /// Whether this is a pass's first window (the state starts from zeros, whatever was carried).
    pub first: bool,
    /// The state carried between this pass's windows.
    pub carry: StateCarry<B>,
}

/// Uploads windows (one per batch) with the carry of their pass.
#[derive(Debug, Clone, Default)]
pub struct TextBatcher<B: Backend> {
    carry: StateCarry<B>,
}

impl<B: Backend> TextBatcher<B> {
    /// A batcher with a carry of its own: one per pass that carries state (training, validation).
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend> Batcher<B, TextWindow, TextBatch<B>> for TextBatcher<B> {
    fn batch(&self, items: Vec<TextWindow>, device: &B::Device) -> TextBatch<B> {
        let [window]: [TextWindow; 1] = items
            .try_into()
            .expect("text windows are loaded one per batch");
        let shape = [window.streams, window.steps];
        TextBatch {
            inputs: Tensor::from_data(TensorData::new(window.inputs, shape), device),
            targets: Tensor::from_data(TensorData::new(window.targets, shape), device),
            first: window.index == 0,
            carry: self.carry.clone(),
        }
    }
}

/// Where Tiny Shakespeare is published (char-rnn's copy), the text a text run downloads when its
/// file is nowhere.
pub const TINY_SHAKESPEARE_URL: &str =
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt";
/// SHA-256 of Tiny Shakespeare's `input.txt` (1 115 394 bytes).
pub const TINY_SHAKESPEARE_SHA256: &str =
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed";

/// Why a text could not be found or fetched.
#[derive(Debug, thiserror::Error)]
pub enum TextFetchError {
    /// The file is not there and downloading is off.
    #[error(
        "{path} does not exist, and --offline forbids downloading it; put the text there or drop --offline"
    )]
    Offline {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The download failed.
    #[error(
        "{path} does not exist, and downloading it from {url} failed: {cause}; pass --mirror URL (the file's own URL) or put the file there"
    )]
    Download {
        /// Where it would have been kept.
        path: PathBuf,
        /// The URL tried.
        url: String,
        /// What went wrong.
        cause: String,
    },
    /// What arrived is not Tiny Shakespeare.
    #[error(
        "{url} served a file whose SHA-256 is {actual}, not Tiny Shakespeare's {expected}; it was not kept"
    )]
    Digest {
        /// The URL.
        url: String,
        /// The digest of what arrived.
        actual: String,
        /// Tiny Shakespeare's.
        expected: &'static str,
    },
    /// The file could not be stored.
    #[error("cannot store the download as {path}: {cause}")]
    Store {
        /// The destination.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
}

/// Where a text run keeps Tiny Shakespeare when it names no directory: `<cache>/lstm-mnist/tinyshakespeare`.
pub fn text_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|cache| cache.join("lstm-mnist").join("tinyshakespeare"))
}

/// `path` itself when it exists; otherwise Tiny Shakespeare, downloaded from `url` (the default
/// when `None`), checked against its SHA-256 and stored atomically as `path` — unless `offline`.
pub fn fetch_text(
    path: &Path,
    url: Option<&str>,
    offline: bool,
) -> Result<PathBuf, TextFetchError> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    if offline {
        return Err(TextFetchError::Offline {
            path: path.to_path_buf(),
        });
    }
    let url = url.unwrap_or(TINY_SHAKESPEARE_URL);
    let failed = |cause: String| TextFetchError::Download {
        path: path.to_path_buf(),
        url: url.to_string(),
        cause,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_per_read(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| failed(e.to_string()))?;
    let actual = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&bytes);
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    if actual != TINY_SHAKESPEARE_SHA256 {
        return Err(TextFetchError::Digest {
            url: url.to_string(),
            actual,
            expected: TINY_SHAKESPEARE_SHA256,
        });
    }
    let store = |cause| TextFetchError::Store {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(store)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, &bytes).map_err(store)?;
    std::fs::rename(&partial, path).map_err(store)?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("text-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("input.txt")
    }

    #[test]
    fn the_vocabulary_is_the_sorted_distinct_characters_and_names_what_it_lacks() {
        let vocabulary = Vocabulary::from_text("hello, world\n");
        assert_eq!(
            vocabulary.chars(),
            ['\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']
        );
        assert_eq!(vocabulary.encode("he", "x").unwrap(), [5, 4]);
        let error = vocabulary
            .encode("hex!x", "--prime")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--prime") && error.contains("'x', '!'"),
            "{error}"
        );
        let path = temp("vocab");
        vocabulary.save(&path).unwrap();
        assert_eq!(Vocabulary::load(&path).unwrap(), vocabulary);
        std::fs::write(&path, r#"{"chars": ["a", "bc"]}"#).unwrap();
        let error = Vocabulary::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("entry 1") && error.contains(&path.display().to_string()),
            "{error}"
        );
        std::fs::write(&path, r#"{"chars": ["a", "a"]}"#).unwrap();
        assert!(
            Vocabulary::load(&path)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn a_text_must_be_utf8_and_not_empty() {
        let path = temp("read");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(read_text(&path), Err(TextError::Empty { .. })));
        std::fs::write(&path, b"abc\xffdef").unwrap();
        let error = read_text(&path).unwrap_err();
        assert!(
            matches!(error, TextError::NotUtf8 { offset: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("offset 3"));
        let missing = path.with_file_name("missing.txt");
        assert!(matches!(read_text(&missing), Err(TextError::Read { .. })));
        std::fs::write(&path, "ça va\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "ça va\n");
    }

    #[test]
    fn the_split_is_nanogpts() {
        // Tiny Shakespeare's 1 115 394 characters: nanoGPT trains on the first 1 003 854.
        let split = TextSplit::new(1_115_394, 0.1, 50_000);
        assert_eq!(split.test, 1_003_854..1_115_394);
        assert_eq!(split.valid, 953_854..1_003_854);
        assert_eq!(split.train, 0..953_854);
    }

    /// Every (input, target) pair the windows hold, in stream order, with the ignored positions.
    fn pairs(streams: &Streams) -> (Vec<(i64, i64)>, usize) {
        let windows: Vec<TextWindow> = (0..streams.len())
            .map(|i| streams.get(i).unwrap())
            .collect();
        assert!(streams.get(streams.len()).is_none());
        let mut rows = vec![Vec::new(); streams.streams()];
        let mut ignored = 0;
        for window in &windows {
            for (b, row) in rows.iter_mut().enumerate() {
                for t in 0..window.steps {
                    let k = b * window.steps + t;
                    if window.targets[k] == IGNORE_TARGET {
                        ignored += 1;
                    } else {
                        row.push((window.inputs[k], window.targets[k]));
                    }
                }
            }
        }
        (rows.concat(), ignored)
    }

    #[test]
    fn streams_predict_every_token_but_the_first_once_in_order() {
        let tokens: Vec<u32> = (0..103).collect();
        for (streams, window) in [(1, 7), (4, 5), (5, 64), (10, 1), (200, 3)] {
            let set = Streams::new(Arc::new(tokens.clone()), streams, window);
            let (pairs, ignored) = pairs(&set);
            let expected: Vec<(i64, i64)> = (0..102).map(|p| (p, p + 1)).collect();
            assert_eq!(pairs, expected, "{streams} streams, window {window}");
            let slots = set.streams() * set.len() * window;
            assert!(ignored < slots, "{streams} streams, window {window}");
            let first = set.get(0).unwrap();
            assert_eq!(first.index, 0);
            assert_eq!(first.steps, window.min(102usize.div_ceil(set.streams())));
        }
    }
}
