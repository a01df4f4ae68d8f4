use burn::config::Config;

use crate::Cell;

/// How a layer's recurrent weights `weight_hh` start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurrentInit {
    /// PyTorch's: every entry from U(−1/√H, 1/√H).
    #[default]
    Pytorch,
    /// Each gate's H × H block a random orthogonal matrix (Saxe et al. 2013), so that the recurrence
    /// neither shrinks nor grows the state at the start; the recipe of Cooijmans et al. 2016 for
    /// the LSTM on pixel MNIST. The input weights and biases stay PyTorch's.
    Orthogonal,
}

/// What the model's head reads and predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// One prediction per sequence, from the last layer's final hidden state (a classifier).
    #[default]
    FinalState,
    /// One prediction at every step, from the last layer's output at that step (a language model,
    /// a tagger).
    EveryStep,
}

/// Cell and sizes of a [`SequenceModel`](crate::SequenceModel): everything needed to build one.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// The recurrent cell of every layer: `lstm`, `peephole_lstm`, `gru` or `rnn`.
    #[config(default = "Cell::Lstm")]
    pub cell: Cell,
    /// Features per time step that the recurrent stack reads (28 for MNIST read row by row); with
    /// token inputs, the embedding's width.
    pub input_size: usize,
    /// `null`: the inputs are float features. A number: the inputs are token ids below it, read
    /// through an embedding of `vocab_size × input_size` (PyTorch's `nn.Embedding`).
    #[config(default = "None")]
    pub vocab_size: Option<usize>,
    /// Where the head reads: `final_state` (one prediction per sequence) or `every_step`.
    #[config(default = "Head::FinalState")]
    pub head: Head,
    /// Dropout probability on the embedding's output, while training only; 0 disables it.
    #[config(default = 0.0)]
    pub input_dropout: f64,
    /// Dropout probability on what the head reads, while training only; 0 disables it.
    #[config(default = 0.0)]
    pub output_dropout: f64,
    /// Hidden (and cell) state size of every layer.
    pub hidden_size: usize,
    /// Number of stacked recurrent layers; layer k+1 reads layer k's output sequence.
    pub num_layers: usize,
    /// Number of output classes of the linear head.
    pub num_classes: usize,
    /// Whether the recurrent layers carry biases (PyTorch's `bias=True`).
    #[config(default = true)]
    pub bias: bool,
    /// Whether every layer also reads the sequence backwards (PyTorch's `bidirectional=True`): a
    /// layer's output is both directions' hidden states side by side (2H), and the head reads the last
    /// layer's two final hidden states.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Dropout probability on the output of every layer but the last, while training only (PyTorch's
    /// `dropout`); 0 disables it.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Added to the forget gate's part of `bias_ih` at initialization (LSTM cells only): 1 opens the
    /// gate at the start, as Gers et al. 2000 and Jozefowicz et al. 2015 advise for long sequences;
    /// 0 is PyTorch's initialization.
    #[config(default = 0.0)]
    pub forget_bias: f64,
    /// How the recurrent weights start: `pytorch` (default) or `orthogonal` (per gate block).
    #[config(default = "RecurrentInit::Pytorch")]
    pub recurrent_init: RecurrentInit,
    /// A gate whose recurrent block starts as the identity matrix instead (by its letter in the cell's
    /// gate order: `i`, `f`, `g`, `o` for the LSTMs, `r`, `z`, `n` for the GRU, `h` for the tanh RNN);
    /// Cooijmans et al.'s code does this for the LSTM's candidate `g`. `null` for none.
    #[config(default = "None")]
    pub identity_gate: Option<String>,
}

/// A [`ModelConfig`] value that cannot describe a model.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("model config field `{field}` is {value}: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Its value, as written.
    pub value: String,
    /// What a valid value looks like.
    pub reason: &'static str,
}

impl ModelConfig {
    /// Adds, to a JSON `model` section, the keys that later versions introduced (`bidirectional`,
    /// `dropout`, `forget_bias`, `recurrent_init`, `identity_gate`) with the values that mean the old
    /// behaviour, so that older configs and run directories load unchanged. Every other key stays required.
    pub fn fill_defaults(section: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = section {
            map.entry("bidirectional").or_insert(false.into());
            map.entry("dropout").or_insert(0.0.into());
            map.entry("forget_bias").or_insert(0.0.into());
            map.entry("recurrent_init").or_insert("pytorch".into());
            map.entry("identity_gate")
                .or_insert(serde_json::Value::Null);
            map.entry("vocab_size").or_insert(serde_json::Value::Null);
            map.entry("head").or_insert("final_state".into());
            map.entry("input_dropout").or_insert(0.0.into());
            map.entry("output_dropout").or_insert(0.0.into());
        }
    }

    /// The index, in the cell's gate order, of [`identity_gate`](Self::identity_gate), checked.
    pub fn identity_gate_index(&self) -> Result<Option<usize>, ConfigError> {
        let Some(gate) = &self.identity_gate else {
            return Ok(None);
        };
        self.cell
            .gate_order()
            .split(',')
            .position(|name| name == gate.trim())
            .map(Some)
            .ok_or(ConfigError {
                field: "identity_gate",
                value: format!("{gate:?}"),
                reason: "it must name one of the cell's gates: i, f, g or o for the LSTMs; r, z or n for the GRU; h for the tanh RNN (or be null)",
            })
    }

    /// Reads a JSON `model` section, older ones included (see [`fill_defaults`](Self::fill_defaults)).
    pub fn from_json_value(mut section: serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::fill_defaults(&mut section);
        serde_json::from_value(section)
    }

    /// Directions per layer: 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        self.stack_shape().directions()
    }

    /// Checks that every size is usable, so that a bad config fails before any tensor is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_classes", self.num_classes),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError {
                    field,
                    value: value.to_string(),
                    reason: "it must be at least 1",
                });
            }
        }
        for (field, p) in [
            ("dropout", self.dropout),
            ("input_dropout", self.input_dropout),
            ("output_dropout", self.output_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(ConfigError {
                    field,
                    value: p.to_string(),
                    reason: "it must be in [0, 1)",
                });
            }
        }
        if self.vocab_size == Some(0) {
            return Err(ConfigError {
                field: "vocab_size",
                value: "0".into(),
                reason: "it must be at least 1, or null for float features",
            });
        }
        if self.input_dropout > 0.0 && self.vocab_size.is_none() {
            return Err(ConfigError {
                field: "input_dropout",
                value: self.input_dropout.to_string(),
                reason: "only token inputs (`vocab_size` set) have an embedding to drop out of; set it to 0",
            });
        }
        if !self.forget_bias.is_finite() {
            return Err(ConfigError {
                field: "forget_bias",
                value: self.forget_bias.to_string(),
                reason: "it must be a finite number",
            });
        }
        if self.forget_bias != 0.0 && !(self.cell.has_cell_state() && self.bias) {
            return Err(ConfigError {
                field: "forget_bias",
                value: self.forget_bias.to_string(),
                reason: "only an LSTM cell (`lstm`, `peephole_lstm`) with `bias: true` has a forget-gate bias; set it to 0",
            });
        }
        self.identity_gate_index()?;
        Ok(())
    }
}
