//! Recurrent sequence classifiers for Burn, generic over the backend.
//!
//! The centrepiece is [`LstmClassifier`]: a stack of LSTM layers reading a `[batch, time, features]`
//! sequence, with a linear head on the last layer's final hidden state. It computes exactly what
//! PyTorch's `nn.LSTM` + `nn.Linear` compute, initializes the same way, and can import PyTorch
//! state_dicts ([`pytorch`]).
//!
//! This crate knows nothing of MNIST files or of training loops.

mod classifier;
mod config;
mod evaluation;
mod loss;
mod lstm;
pub mod parity;
pub mod pytorch;
mod record;

pub use classifier::LstmClassifier;
pub use config::{ConfigError, ModelConfig};
pub use evaluation::Evaluation;
pub use loss::cross_entropy;
pub use lstm::{LstmLayer, LstmState, StackedLstm};
pub use record::{ModelRecorder, RecordError};
