//! The training configuration: one JSON file holds every hyperparameter of a run.

use std::path::{Path, PathBuf};

use burn::config::Config;
use data::{DataConfig, DataSource};
use model::ModelConfig;
use serde_json::Value;

use crate::clipping::ClippingConfig;
use crate::schedule::ScheduleConfig;
use crate::selection::ModelSelection;

/// Everything a training run needs, saved as the run's `config.json`.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// Network sizes.
    pub model: ModelConfig,
    /// Where MNIST comes from, its normalization and the validation split.
    pub data: DataConfig,
    /// Optimizer and learning rate.
    pub optimizer: OptimizerConfig,
    /// Training batch size.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Batch size for validation and testing (no gradients: larger is faster).
    #[config(default = 1000)]
    pub eval_batch_size: usize,
    /// Passes over the training set.
    #[config(default = 20)]
    pub num_epochs: usize,
    /// At least this many optimizer steps: a new run raises `num_epochs` to the epochs they take at
    /// its batches per epoch, so that a small dataset trains as long as a large one does (the run's
    /// `config.json` keeps the raised count, which `--resume` reads). `null`: `num_epochs` as given.
    #[config(default = "None")]
    pub min_steps: Option<usize>,
    /// Seeds weight initialization and the per-epoch shuffle of the training set.
    #[config(default = 0)]
    pub seed: u64,
    /// Gradient clipping before every optimizer step; `null` or absent clips nothing.
    #[config(default = "None")]
    pub gradient_clipping: Option<ClippingConfig>,
    /// How `optimizer.learning_rate` changes over the run; absent means constant.
    #[config(default = "ScheduleConfig::new()")]
    pub lr_schedule: ScheduleConfig,
    /// Which epoch's model the run reports (`model.mpk`, tested once): `"last"` (absent means
    /// this), `"best_valid_accuracy"` or `"best_valid_loss"` (these need `data.validation_size` > 0).
    #[config(default = "ModelSelection::Last")]
    pub model_selection: ModelSelection,
}

/// The optimizer, with the same semantics as its PyTorch namesake.
#[derive(Config, Debug, PartialEq)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`: `v = momentum * v + (1 - dampening) * g`, `p -= learning_rate * v`.
    Sgd {
        /// Step size.
        learning_rate: f64,
        /// Momentum factor; 0 disables momentum.
        momentum: f64,
        /// Dampening of the momentum (PyTorch's default is 0; Burn's is 0.1).
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient; 0 disables it.
        weight_decay: f64,
    },
    /// `torch.optim.Adam` (coupled L2 weight decay).
    Adam {
        /// Step size.
        learning_rate: f64,
        /// Decay of the first-moment estimate.
        beta_1: f64,
        /// Decay of the second-moment estimate.
        beta_2: f64,
        /// Added to the denominator for stability (PyTorch: 1e-8; Burn's default is 1e-5).
        epsilon: f64,
        /// L2 penalty added to the gradient; 0 disables it.
        weight_decay: f64,
    },
    /// `torch.optim.RMSprop`: `s = alpha * s + (1 - alpha) * g²`, `v = momentum * v + g / (√s + epsilon)`,
    /// `p -= learning_rate * v` (centered: `s` minus the square of the gradient's running mean).
    RmsProp {
        /// Step size.
        learning_rate: f64,
        /// Decay of the running mean of the squared gradient (PyTorch: 0.99).
        alpha: f64,
        /// Added to the denominator for stability (PyTorch: 1e-8; Burn's default is 1e-5).
        epsilon: f64,
        /// Momentum factor; 0 disables momentum (PyTorch's default; Burn's is 0.9).
        momentum: f64,
        /// Normalize by the gradient's estimated variance instead of its second moment.
        centered: bool,
        /// L2 penalty added to the gradient; 0 disables it.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// The L2 penalty.
    pub fn weight_decay(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { weight_decay, .. }
            | OptimizerConfig::Adam { weight_decay, .. }
            | OptimizerConfig::RmsProp { weight_decay, .. } => *weight_decay,
        }
    }

    /// The step size.
    pub fn learning_rate(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { learning_rate, .. }
            | OptimizerConfig::Adam { learning_rate, .. }
            | OptimizerConfig::RmsProp { learning_rate, .. } => *learning_rate,
        }
    }
}

/// Why a config file was refused. The message names the file and says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not valid JSON, or a field is missing or of the wrong type.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// serde's description, with line and column.
        message: String,
    },
    /// The file has a key the config does not know (a typo, most often).
    #[error("config {path}: unknown key `{key}`{suggestion}; known keys here: {known}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// Dotted path of the key, e.g. `model.hiden_size`.
        key: String,
        /// ", did you mean `…`?" when a known key is close.
        suggestion: String,
        /// The keys allowed at that level.
        known: String,
    },
    /// A required key is missing and an unknown key stands in its place, misspelt.
    #[error(
        "config {path}: unknown key `{key}`, did you mean `{missing}`? (`{missing}` is required and missing)"
    )]
    MisspeltKey {
        /// The file.
        path: PathBuf,
        /// Dotted path of the misspelt key, e.g. `model.hiden_size`.
        key: String,
        /// The required key it stands for, e.g. `hidden_size`.
        missing: String,
    },
    /// A value is out of range.
    #[error("config {path}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// Which field, its value, and what is allowed.
        message: String,
    },
}

impl TrainConfig {
    /// Reads a JSON config, refusing unknown keys and values that make no sense.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigFileError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_json(&text, path)
    }

    /// The JSON of a run's `config.json`: the fields that apply to its data source and none that
    /// do not (a `.ts`, text or dictionary run has no image normalization, a run reads one source's
    /// section), which [`from_json`](Self::from_json) fills back with their defaults.
    pub fn to_run_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a config serializes");
        if let Value::Object(top) = &mut value {
            if self.min_steps.is_none() {
                top.remove("min_steps");
            }
            if let Some(Value::Object(data)) = top.get_mut("data") {
                for key in self.data.keys_not_read() {
                    data.remove(key);
                }
            }
        }
        serde_json::to_string_pretty(&value).expect("a config serializes")
    }

    /// Parses JSON text; `path` only names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ConfigFileError> {
        let invalid = |e: serde_json::Error| ConfigFileError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let given: Value = serde_json::from_str(text).map_err(invalid)?;
        let mut filled = given.clone();
        fill_defaults(&mut filled);
        let config: TrainConfig = serde_json::from_value(filled).map_err(|e| {
            misspelt_required_key(&given, &e.to_string())
                .map(|(key, missing)| ConfigFileError::MisspeltKey {
                    path: path.to_path_buf(),
                    key,
                    missing,
                })
                .unwrap_or_else(|| invalid(e))
        })?;
        // Burn's Config ignores unknown keys: compare with what the parsed config writes back.
        let known = serde_json::to_value(&config).map_err(invalid)?;
        if let Some((key, suggestion, known)) = unknown_key(&given, &known, "") {
            return Err(ConfigFileError::UnknownKey {
                path: path.to_path_buf(),
                key,
                suggestion,
                known,
            });
        }
        config
            .validate()
            .map_err(|message| ConfigFileError::Value {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Checks every value: sizes and counts at least 1, finite positive rates, factors in range.
    pub fn validate(&self) -> Result<(), String> {
        let mut model = self.model.clone();
        if self.data.source == DataSource::Ts {
            // 0 means "from the data", resolved when the data is read.
            for size in [&mut model.input_size, &mut model.num_classes] {
                if *size == 0 {
                    *size = 1;
                }
            }
        }
        if matches!(
            self.data.source,
            DataSource::Text | DataSource::Pronunciations
        ) {
            // The vocabulary's size, from the data.
            if model.num_classes == 0 {
                model.num_classes = 1;
            }
            match &mut model.vocab_size {
                Some(size @ 0) => *size = 1,
                Some(_) => {}
                None => {
                    return Err(format!(
                        "field `model.vocab_size` is null, but data.source \"{}\" feeds token ids: set it to 0 (taken from the data) or to the vocabulary's size",
                        self.data.source.name()
                    ));
                }
            }
        }
        self.data.validate().map_err(|e| e.to_string())?;
        model.validate().map_err(|e| e.to_string())?;
        if let Some(clipping) = &self.gradient_clipping {
            clipping.validate()?;
        }
        self.lr_schedule.validate(self.optimizer.learning_rate())?;
        if self.model_selection.uses_validation()
            && !self.data.holds_out_validation()
            && !matches!(
                self.data.source,
                DataSource::Text | DataSource::Pronunciations
            )
        {
            return Err(format!(
                "field `model_selection` is \"{}\", but `data.validation_size` is 0, so validation is the test set and choosing on it would make the test figure optimistic; hold out a validation split (e.g. `data.validation_size`: 5000, or for `.ts` data `data.validation_fraction`: 0.2) or use \"last\"",
                self.model_selection.name()
            ));
        }
        for (field, value) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("num_epochs", self.num_epochs),
            ("min_steps", self.min_steps.unwrap_or(1)),
        ] {
            if value == 0 {
                return Err(format!("field `{field}` is 0: it must be at least 1"));
            }
        }
        let check = |field: &str, value: f64, ok: bool, allowed: &str| {
            if ok && value.is_finite() {
                Ok(())
            } else {
                Err(format!(
                    "field `optimizer.{field}` is {value}: it must be {allowed}"
                ))
            }
        };
        let learning_rate = self.optimizer.learning_rate();
        check(
            "learning_rate",
            learning_rate,
            learning_rate > 0.0,
            "positive",
        )?;
        let weight_decay = self.optimizer.weight_decay();
        check(
            "weight_decay",
            weight_decay,
            weight_decay >= 0.0,
            "0 or positive",
        )?;
        match self.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                dampening,
                ..
            } => {
                check(
                    "momentum",
                    momentum,
                    (0.0..1.0).contains(&momentum),
                    "in [0, 1)",
                )?;
                check(
                    "dampening",
                    dampening,
                    (0.0..=1.0).contains(&dampening),
                    "in [0, 1]",
                )
            }
            OptimizerConfig::Adam {
                beta_1,
                beta_2,
                epsilon,
                ..
            } => {
                check("beta_1", beta_1, (0.0..1.0).contains(&beta_1), "in [0, 1)")?;
                check("beta_2", beta_2, (0.0..1.0).contains(&beta_2), "in [0, 1)")?;
                check("epsilon", epsilon, epsilon > 0.0, "positive")
            }
            OptimizerConfig::RmsProp {
                alpha,
                epsilon,
                momentum,
                ..
            } => {
                check("alpha", alpha, (0.0..1.0).contains(&alpha), "in [0, 1)")?;
                check("epsilon", epsilon, epsilon > 0.0, "positive")?;
                check(
                    "momentum",
                    momentum,
                    (0.0..1.0).contains(&momentum),
                    "in [0, 1)",
                )
            }
        }
    }
}

/// Adds the keys that later versions introduced, with the values that mean the old behaviour, where a
/// config lacks them; every other key stays required.
fn fill_defaults(config: &mut Value) {
    let Value::Object(top) = config else {
        return;
    };
    top.entry("gradient_clipping").or_insert(Value::Null);
    top.entry("min_steps").or_insert(Value::Null);
    top.entry("model_selection")
        .or_insert_with(|| ModelSelection::Last.name().into());
    top.entry("lr_schedule").or_insert_with(|| {
        serde_json::to_value(ScheduleConfig::new()).expect("schedule serializes")
    });
    if let Some(data) = top.get_mut("data") {
        DataConfig::fill_defaults(data);
    }
    let source = top
        .get("data")
        .and_then(|d| d.get("source"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let from_data = source.as_deref() == Some(DataSource::Ts.name());
    let from_text = matches!(source.as_deref(), Some("text" | "pronunciations"));
    if let Some(model) = top.get_mut("model") {
        // Text and pronunciation runs take their vocabularies (the model's token count and class
        // count) from the data, and predict at every step.
        if let (true, Value::Object(model)) = (from_text, &mut *model) {
            if model.get("vocab_size").is_none_or(Value::is_null) {
                model.insert("vocab_size".into(), 0.into());
            }
            model.entry("num_classes").or_insert(0.into());
            model.entry("head").or_insert("every_step".into());
        }
        ModelConfig::fill_defaults(model);
        // A `.ts` run takes its input size and class count from the data when the config leaves
        // them out (0 until the data is read).
        if let (true, Value::Object(model)) = (from_data, model) {
            model.entry("input_size").or_insert(0.into());
            model.entry("num_classes").or_insert(0.into());
        }
    }
}

/// When serde reports ``missing field `X` `` and some object of `given` lacks `X` but holds an unknown
/// key close to it, that key's dotted path and `X`.
fn misspelt_required_key(given: &Value, message: &str) -> Option<(String, String)> {
    let missing = message
        .strip_prefix("missing field `")?
        .split('`')
        .next()?
        .to_string();
    find_misspelling(given, &missing, "").map(|key| (key, missing))
}

fn find_misspelling(value: &Value, missing: &str, prefix: &str) -> Option<String> {
    let Value::Object(map) = value else {
        return None;
    };
    let path = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    if !map.contains_key(missing)
        && let Some(key) = map
            .keys()
            .filter(|key| strsim::jaro_winkler(key, missing) > 0.8)
            .max_by(|a, b| {
                strsim::jaro_winkler(a, missing).total_cmp(&strsim::jaro_winkler(b, missing))
            })
    {
        return Some(path(key));
    }
    map.iter()
        .find_map(|(key, child)| find_misspelling(child, missing, &path(key)))
}

/// The first key of `given` (depth first) that `known` lacks: `(dotted path, suggestion, known keys)`.
fn unknown_key(given: &Value, known: &Value, prefix: &str) -> Option<(String, String, String)> {
    let (Value::Object(given), Value::Object(known)) = (given, known) else {
        return None;
    };
    for (key, value) in given {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match known.get(key) {
            Some(known_value) => {
                if let Some(found) = unknown_key(value, known_value, &path) {
                    return Some(found);
                }
            }
            None => {
                let closest = known
                    .keys()
                    .map(|k| (strsim::jaro_winkler(key, k), k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let suggestion = closest
                    .map(|(_, k)| format!(", did you mean `{k}`?"))
                    .unwrap_or_default();
                let names: Vec<&str> = known.keys().map(String::as_str).collect();
                return Some((path, suggestion, names.join(", ")));
            }
        }
    }
    None
}
