use burn::config::Config;

use crate::Cell;

/// Cell and sizes of a [`RecurrentClassifier`](crate::RecurrentClassifier): everything needed to build one.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// The recurrent cell of every layer: `lstm`, `peephole_lstm`, `gru` or `rnn`.
    #[config(default = "Cell::Lstm")]
    pub cell: Cell,
    /// Features per time step (28 for MNIST read row by row).
    pub input_size: usize,
    /// Hidden (and cell) state size of every layer.
    pub hidden_size: usize,
    /// Number of stacked recurrent layers; layer k+1 reads layer k's output sequence.
    pub num_layers: usize,
    /// Number of output classes of the linear head.
    pub num_classes: usize,
    /// Whether the recurrent layers carry biases (PyTorch's `bias=True`).
    #[config(default = true)]
    pub bias: bool,
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
        Ok(())
    }
}
