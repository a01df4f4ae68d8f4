//! The `.ts` files of the time-series classification archive (as sktime and aeon write them): labelled
//! sequences of float vectors, of equal or varying length.
//!
//! ```text
//! # a comment
//! @problemName FSDD
//! @univariate false
//! @dimensions 2
//! @equalLength false
//! @classLabel true zero one
//! @data
//! 0.1,0.2,0.3:1.0,1.1,1.2:zero        <- one example: a channel per `:` field, the class label last
//! 0.5,0.4:2.0,2.1:one
//! ```
//!
//! A file may also come without labels (`@classLabel false`, no label field): sequences to classify,
//! which training and evaluation refuse ([`TsDataset::require_labels`]).
//!
//! Anything a reader could misread is an error naming the file, the line and what is wrong: an undeclared
//! class, a channel count other than `@dimensions`, channels of unequal length within an example, a value
//! that is not a finite number, a missing value (`?`), a file without examples.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One labelled sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct TsExample {
    /// The values, step by step: `length × dimensions`, each step's channels side by side.
    pub values: Vec<f32>,
    /// Number of time steps.
    pub length: usize,
    /// Index of the class in [`TsDataset::classes`]; `None` in a file without labels
    /// (`@classLabel false`), which can be classified but not trained or evaluated on.
    pub label: Option<usize>,
    /// The 1-based line of the file it was read from, to name it in messages and predictions (0
    /// for a sequence made in memory).
    pub line: usize,
}

/// The contents of one `.ts` file.
#[derive(Debug, Clone, PartialEq)]
pub struct TsDataset {
    /// `@problemName`, when given.
    pub problem: Option<String>,
    /// Channels (features) per time step.
    pub dimensions: usize,
    /// Class names in the order `@classLabel` declares them; a label is an index into this list.
    /// Empty in a file without labels.
    pub classes: Vec<String>,
    /// The examples, in file order.
    pub examples: Vec<TsExample>,
}

/// What the reader does with a missing value (`?`, or `NaN`) in a `.ts` file: `data.missing` in a
/// run's config, applied to every file the run reads (training, test, and `infer predict`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingValues {
    /// Refuse the file, naming the line that holds the first missing value, or the
    /// `@missing true` header line that announces them.
    #[default]
    Refuse,
    /// Fill every gap of a channel with the value before it (carried forward); a gap at the start
    /// of a sequence with the first value after it. A channel with no value at all is refused.
    Fill,
}

impl MissingValues {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            MissingValues::Refuse => "refuse",
            MissingValues::Fill => "fill",
        }
    }
}

/// Why a `.ts` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TsError {
    /// The file could not be read at all.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A dataset directory does not hold exactly one training and one test file.
    #[error("{dir}: {message}")]
    Locate {
        /// The directory.
        dir: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
    /// The file was read but is not a usable `.ts` classification file.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the problem is the file as a whole).
        line: usize,
        /// What is wrong, and what to do.
        message: String,
    },
}

/// Header facts gathered before `@data`.
#[derive(Default)]
struct Header {
    problem: Option<String>,
    dimensions: Option<usize>,
    univariate: Option<bool>,
    equal_length: Option<bool>,
    series_length: Option<usize>,
    classes: Option<Vec<String>>,
    missing: Option<bool>,
}

impl TsDataset {
    /// Reads and parses `path`, refusing missing values.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, TsError> {
        Self::read_with(path, MissingValues::Refuse)
    }

    /// Reads and parses `path`, treating missing values as `missing` says.
    pub fn read_with(path: impl AsRef<Path>, missing: MissingValues) -> Result<Self, TsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_with(&text, path, missing)
    }

    /// Parses the text of a `.ts` file, refusing missing values; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TsError> {
        Self::parse_with(text, path, MissingValues::Refuse)
    }

    /// Parses the text of a `.ts` file, treating missing values as `missing` says; `path` names
    /// it in errors.
    pub fn parse_with(text: &str, path: &Path, missing: MissingValues) -> Result<Self, TsError> {
        let error = |line: usize, message: String| TsError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut header = Header::default();
        let mut in_data = false;
        let mut examples = Vec::new();
        let mut dimensions = None;
        let mut class_index: HashMap<String, usize> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !in_data {
                if !line.starts_with('@') {
                    return Err(error(
                        number,
                        format!(
                            "expected a header line (`@key value`) or `@data` before the examples, found {:?}",
                            preview(line)
                        ),
                    ));
                }
                let announced = header.missing;
                in_data = header.read_line(line).map_err(|m| error(number, m))?;
                if missing == MissingValues::Refuse
                    && announced != Some(true)
                    && header.missing == Some(true)
                {
                    return Err(error(
                        number,
                        format!(
                            "`@missing true`: the file announces missing values (`?`), which data.missing \"refuse\" (the default) does not take; {REFUSED_MISSING_HINT}"
                        ),
                    ));
                }
                if in_data {
                    let classes = header.classes.clone().ok_or_else(|| {
                        error(
                            number,
                            "no `@classLabel true <labels…>` line before `@data`: a classification file declares its classes".into(),
                        )
                    })?;
                    class_index = classes
                        .iter()
                        .enumerate()
                        .map(|(i, name)| (name.clone(), i))
                        .collect();
                    dimensions = header.dimensions;
                    if header.univariate == Some(true) {
                        dimensions = Some(1);
                    }
                }
                continue;
            }
            if line.starts_with('@') {
                return Err(error(
                    number,
                    format!("header line {:?} after `@data`", preview(line)),
                ));
            }
            let mut example = parse_example(line, &class_index, &mut dimensions, &header, missing)
                .map_err(|m| error(number, m))?;
            example.line = number;
            examples.push(example);
        }
        if !in_data {
            return Err(error(
                0,
                "no `@data` line: this is not a .ts file, or it is empty".into(),
            ));
        }
        if examples.is_empty() {
            return Err(error(0, "no examples after `@data`".into()));
        }
        Ok(Self {
            problem: header.problem,
            dimensions: dimensions.unwrap_or(1),
            classes: header.classes.unwrap_or_default(),
            examples,
        })
    }

    /// Whether the examples carry class labels (`@classLabel true <labels…>`).
    pub fn is_labelled(&self) -> bool {
        !self.classes.is_empty()
    }

    /// An error naming `path` when the examples carry no labels: what training and evaluation need.
    pub fn require_labels(&self, path: &Path) -> Result<(), TsError> {
        if self.is_labelled() {
            return Ok(());
        }
        Err(TsError::Parse {
            path: path.to_path_buf(),
            line: 0,
            message: "`@classLabel false`: the examples have no class labels, which training and evaluation need; `infer predict` classifies such a file".into(),
        })
    }

    /// The shortest and longest sequence length.
    pub fn length_range(&self) -> (usize, usize) {
        let lengths = self.examples.iter().map(|e| e.length);
        (
            lengths.clone().min().unwrap_or(0),
            lengths.max().unwrap_or(0),
        )
    }
}

impl Header {
    /// Takes one header line; returns true at `@data`.
    fn read_line(&mut self, line: &str) -> Result<bool, String> {
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((key, value)) => (key, value.trim()),
            None => (line, ""),
        };
        let key = key.to_ascii_lowercase();
        let flag = |value: &str| match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("`{key}` takes true or false, not {other:?}")),
        };
        let count = |value: &str| match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("`{key}` takes a positive integer, not {value:?}")),
        };
        match key.as_str() {
            "@data" if value.is_empty() => return Ok(true),
            "@data" => {
                return Err(format!(
                    "`@data` stands alone on its line, found {value:?} after it"
                ));
            }
            "@problemname" => self.problem = Some(value.to_string()),
            "@timestamps" => {
                if flag(value)? {
                    return Err("`@timeStamps true` (values as (time,value) pairs) is not supported; write the values alone".into());
                }
            }
            "@missing" => self.missing = Some(flag(value)?),
            "@univariate" => self.univariate = Some(flag(value)?),
            // aeon's writer (1.6) spells it `@dimension`.
            "@dimensions" | "@dimension" => self.dimensions = Some(count(value)?),
            "@equallength" => self.equal_length = Some(flag(value)?),
            "@serieslength" => self.series_length = Some(count(value)?),
            "@targetlabel" => {
                if flag(value)? {
                    return Err("`@targetLabel true` marks a regression file; only classification (`@classLabel true <labels…>`) is supported".into());
                }
            }
            "@classlabel" => {
                let mut words = value.split_whitespace();
                match words.next().map(str::to_ascii_lowercase).as_deref() {
                    Some("true") => {}
                    Some("false") => {
                        if let Some(extra) = words.next() {
                            return Err(format!(
                                "`@classLabel false` lists no labels, found {extra:?} after it"
                            ));
                        }
                        self.classes = Some(Vec::new());
                        return Ok(false);
                    }
                    _ => {
                        return Err(format!(
                            "`@classLabel` takes `true <labels…>`, not {value:?}"
                        ));
                    }
                }
                let labels: Vec<String> = words.map(str::to_string).collect();
                if labels.is_empty() {
                    return Err("`@classLabel true` lists no labels".into());
                }
                if let Some(twice) = labels
                    .iter()
                    .enumerate()
                    .find_map(|(i, l)| labels[..i].contains(l).then_some(l))
                {
                    return Err(format!("`@classLabel` lists {twice:?} twice"));
                }
                self.classes = Some(labels);
            }
            _ => {
                return Err(format!(
                    "unknown header key {key:?}; known: @problemName, @timeStamps, @missing, @univariate, @dimensions, @equalLength, @seriesLength, @classLabel, @targetLabel, @data"
                ));
            }
        }
        if let (Some(true), Some(dimensions)) = (self.univariate, self.dimensions)
            && dimensions != 1
        {
            return Err(format!(
                "`@univariate true` with `@dimensions {dimensions}`: a univariate file has one dimension"
            ));
        }
        Ok(false)
    }
}

/// One line after `@data`: channels separated by `:`, the class label last.
fn parse_example(
    line: &str,
    classes: &HashMap<String, usize>,
    dimensions: &mut Option<usize>,
    header: &Header,
    missing: MissingValues,
) -> Result<TsExample, String> {
    let mut fields: Vec<&str> = line.split(':').collect();
    // A file without labels (`@classLabel false`) declares no classes and has no label field.
    let label = if classes.is_empty() {
        None
    } else {
        let label_text = fields.pop().unwrap_or_default().trim();
        Some(*classes.get(label_text).ok_or_else(|| {
            let mut declared: Vec<(&String, &usize)> = classes.iter().collect();
            declared.sort_by_key(|(_, i)| **i);
            let declared: Vec<&str> = declared.iter().map(|(name, _)| name.as_str()).collect();
            format!(
                "class {label_text:?} is not declared by `@classLabel` ({})",
                declared.join(" ")
            )
        })?)
    };
    if fields.is_empty() {
        return Err(
            "an example needs at least one channel of values before its class label".into(),
        );
    }
    match *dimensions {
        Some(expected) if expected != fields.len() => {
            return Err(format!(
                "{} channels (`:`-separated fields before the label), but the file has {expected} (`@dimensions`, or the first example)",
                fields.len()
            ));
        }
        _ => *dimensions = Some(fields.len()),
    }
    let mut channels: Vec<Vec<f32>> = Vec::with_capacity(fields.len());
    for (c, field) in fields.iter().enumerate() {
        let mut values = Vec::new();
        for (t, text) in field.split(',').enumerate() {
            let text = text.trim();
            if text == "?" || text.eq_ignore_ascii_case("nan") {
                if missing == MissingValues::Refuse {
                    return Err(format!(
                        "channel {c}, step {t}: a missing value ({text:?}); {REFUSED_MISSING_HINT}"
                    ));
                }
                values.push(f32::NAN);
                continue;
            }
            match text.parse::<f32>() {
                Ok(value) if value.is_finite() => values.push(value),
                _ => {
                    return Err(format!(
                        "channel {c}, step {t}: {:?} is not a finite number",
                        preview(text)
                    ));
                }
            }
        }
        if !fill_gaps(&mut values) {
            return Err(format!(
                "channel {c} has only missing values: there is no value to fill them from"
            ));
        }
        channels.push(values);
    }
    let length = channels[0].len();
    if let Some((c, other)) = channels
        .iter()
        .enumerate()
        .find(|(_, values)| values.len() != length)
    {
        return Err(format!(
            "channel 0 has {length} steps but channel {c} has {}: the channels of one example have one length",
            other.len()
        ));
    }
    if header.equal_length == Some(true)
        && let Some(expected) = header.series_length
        && expected != length
    {
        return Err(format!(
            "{length} steps, but `@equalLength true` with `@seriesLength {expected}`"
        ));
    }
    let mut values = Vec::with_capacity(length * channels.len());
    for t in 0..length {
        values.extend(channels.iter().map(|channel| channel[t]));
    }
    Ok(TsExample {
        values,
        length,
        label,
        line: 0,
    })
}

/// What every refusal of missing values suggests.
const REFUSED_MISSING_HINT: &str = "set data.missing to \"fill\" in the config to carry the last value forward, or fill or drop missing values before training";

/// Fills the gaps (NaN) of one channel: each with the value before it, a gap at the start with the
/// first value after it. False when the channel has no value at all.
fn fill_gaps(values: &mut [f32]) -> bool {
    let Some(first) = values.iter().position(|v| !v.is_nan()) else {
        return values.is_empty();
    };
    let mut last = values[first];
    for v in values.iter_mut() {
        if v.is_nan() {
            *v = last;
        } else {
            last = *v;
        }
    }
    true
}

/// At most 40 characters of `text`, for messages.
fn preview(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# two classes, two channels, varying lengths
@problemName Tiny
@univariate false
@dimensions 2
@equalLength false
@classLabel true Standing Running
@data
0.5,1.5,2.5:10,11,12:Running

1,2:3,4:Standing
";

    fn parse(text: &str) -> Result<TsDataset, TsError> {
        TsDataset::parse(text, Path::new("tiny_TRAIN.ts"))
    }

    /// The error's line and message, for a file that must be refused.
    fn refused(text: &str) -> (usize, String) {
        match parse(text) {
            Err(TsError::Parse {
                line,
                message,
                path,
            }) => {
                assert_eq!(path, Path::new("tiny_TRAIN.ts"));
                (line, message)
            }
            other => panic!("accepted or wrong error: {other:?}"),
        }
    }

    fn with_data(data: &str) -> String {
        format!("@dimensions 2\n@classLabel true a b\n@data\n{data}\n")
    }

    #[test]
    fn missing_values_are_refused_by_default_and_filled_on_request() {
        // Refused at the header that announces them, or at the line that holds one.
        let announced = "@dimensions 2\n@missing true\n@classLabel true a b\n@data\n1,2:3,4:a\n";
        let (line, message) = refused(announced);
        assert_eq!(line, 2, "{message}");
        assert!(
            message.contains("@missing true") && message.contains("data.missing"),
            "{message}"
        );
        let (line, message) = refused(&with_data("1,2:3,4:a\n1,?:3,4:b"));
        assert_eq!(line, 5, "{message}");
        assert!(message.contains("data.missing to \"fill\""), "{message}");

        // Filled: each gap with the value before it, a leading gap with the first value after it,
        // per channel; `?` and `NaN` alike; the header's announcement is then fine.
        let text = "@dimensions 2\n@missing true\n@classLabel true a b\n@data\n?,?,3,?,5,NaN:1,?,?,4,5,6:a\n";
        let set = TsDataset::parse_with(text, Path::new("gaps.ts"), MissingValues::Fill).unwrap();
        let example = &set.examples[0];
        assert_eq!(example.length, 6);
        let channel =
            |c: usize| -> Vec<f32> { example.values.iter().skip(c).step_by(2).copied().collect() };
        assert_eq!(channel(0), [3.0, 3.0, 3.0, 3.0, 5.0, 5.0]);
        assert_eq!(channel(1), [1.0, 1.0, 1.0, 4.0, 5.0, 6.0]);
        // A file without gaps reads the same under either policy.
        assert_eq!(
            TsDataset::parse_with(GOOD, Path::new("tiny_TRAIN.ts"), MissingValues::Fill).unwrap(),
            parse(GOOD).unwrap()
        );
        // A channel with nothing to fill from is refused, with its line.
        let empty = with_data("1,2:3,4:a\n?,?:3,4:b");
        match TsDataset::parse_with(&empty, Path::new("gaps.ts"), MissingValues::Fill) {
            Err(TsError::Parse { line, message, .. }) => {
                assert_eq!(line, 5);
                assert!(
                    message.contains("channel 0 has only missing values"),
                    "{message}"
                );
            }
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn a_good_file_reads_step_by_step_with_its_classes() {
        let set = parse(GOOD).unwrap();
        assert_eq!(set.problem.as_deref(), Some("Tiny"));
        assert_eq!(set.dimensions, 2);
        assert_eq!(set.classes, ["Standing", "Running"]);
        assert_eq!(set.examples.len(), 2);
        assert_eq!(set.examples[0].length, 3);
        assert_eq!(set.examples[0].label, Some(1));
        assert_eq!(set.examples[0].values, [0.5, 10.0, 1.5, 11.0, 2.5, 12.0]);
        assert_eq!(set.examples[1].values, [1.0, 3.0, 2.0, 4.0]);
        assert_eq!(set.examples[1].label, Some(0));
        assert_eq!(set.length_range(), (2, 3));
        assert!(set.is_labelled());
    }

    #[test]
    fn files_without_labels_read_every_field_as_a_channel_and_refuse_training() {
        let set = parse(
            "@dimensions 2
@classLabel false
@data
1,2,3:4,5,6
7:8
",
        )
        .unwrap();
        assert!(set.classes.is_empty() && !set.is_labelled());
        assert_eq!((set.dimensions, set.examples.len()), (2, 2));
        assert_eq!(set.examples[0].label, None);
        assert_eq!(set.examples[0].values, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let err = set
            .require_labels(Path::new("new.ts"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("new.ts:0: `@classLabel false`") && err.contains("infer predict"),
            "{err}"
        );
        // A label field where none are declared is a channel too many.
        let (line, message) = refused(
            "@dimensions 2
@classLabel false
@data
1:2:a
",
        );
        assert_eq!(line, 4);
        assert!(message.contains("3 channels"), "{message}");
        let (line, message) = refused(
            "@classLabel false a b
",
        );
        assert_eq!(
            (line, message.contains("lists no labels")),
            (1, true),
            "{message}"
        );
    }

    #[test]
    fn header_keys_are_case_insensitive_and_files_without_dimensions_take_the_first_example() {
        let set = parse("@PROBLEMNAME x\n@ClassLabel TRUE 7 3\n@DATA\n1,2,3:7\n4:3\n").unwrap();
        assert_eq!((set.dimensions, set.classes.len()), (1, 2));
        assert_eq!(set.examples[1].label, Some(1));
        let (line, message) = refused("@classLabel true 7 3\n@data\n1,2:7\n1:2:3\n");
        assert_eq!(line, 4);
        assert!(
            message.contains("2 channels") && message.contains("has 1"),
            "{message}"
        );
    }

    #[test]
    fn a_file_is_read_from_disk_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("ts-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("Tiny_TRAIN.ts");
        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(TsDataset::read(&path).unwrap(), parse(GOOD).unwrap());
        let err = TsDataset::read(dir.join("nope.ts")).unwrap_err();
        assert!(
            matches!(err, TsError::Read { .. }) && err.to_string().contains("nope.ts"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_bad_input_is_one_error_with_its_line() {
        let cases: [(String, usize, &str); 15] = [
            (with_data("1,2:3,4:c"), 4, "class \"c\" is not declared"),
            (with_data("1,2:3,4:5,6:a"), 4, "3 channels"),
            (with_data("1,2:3:a"), 4, "channel 1 has 1"),
            (with_data("1,x:3,4:a"), 4, "\"x\" is not a finite number"),
            (with_data("1,?:3,4:a"), 4, "missing value"),
            (with_data("1,NaN:3,4:a"), 4, "missing value"),
            (with_data("1,inf:3,4:a"), 4, "not a finite number"),
            (with_data("1,,2:3,4,5:a"), 4, "not a finite number"),
            (with_data("a"), 4, "at least one channel"),
            (
                "@dimensions 2\n@classLabel true a\n@data\n".into(),
                0,
                "no examples",
            ),
            (String::new(), 0, "no `@data` line"),
            ("1,2:a\n".into(), 1, "expected a header line"),
            (
                "@dimensions 1\n@data\n1:a\n".into(),
                2,
                "no `@classLabel true",
            ),
            ("@timeStamps true\n".into(), 1, "not supported"),
            ("@colour red\n".into(), 1, "unknown header key"),
        ];
        for (text, line, needle) in cases {
            let (at, message) = refused(&text);
            assert_eq!(at, line, "{text:?}: {message}");
            assert!(message.contains(needle), "{text:?}: {message}");
        }
        let (_, message) =
            refused("@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2:a\n");
        assert!(message.contains("@seriesLength 3"), "{message}");
        let (_, message) = refused("@univariate true\n@dimensions 3\n");
        assert!(message.contains("univariate"), "{message}");
        let (_, message) = refused("@classLabel true a b a\n");
        assert!(message.contains("twice"), "{message}");
        let (line, message) = refused("@classLabel true a\n@data\n1:a\n@dimensions 1\n");
        assert_eq!(line, 4, "{message}");
        let err = parse(&with_data("1,2:3:a")).unwrap_err().to_string();
        assert!(err.starts_with("tiny_TRAIN.ts:4: "), "{err}");
    }
}
