//! Recurrent sequence classifiers for Burn, generic over the backend.
//!
//! The centrepiece is [`RecurrentClassifier`]: a stack of recurrent layers reading a
//! `[batch, time, features]` sequence, with a linear head on the last layer's final hidden state. The
//! [`Cell`] is the LSTM of the reference program, the peephole LSTM, the GRU or the plain tanh RNN. The
//! LSTM, GRU and RNN compute exactly what PyTorch's `nn.LSTM` / `nn.GRU` / `nn.RNN` + `nn.Linear`
//! compute, initialize the same way, and can import PyTorch state_dicts ([`pytorch`]).
//!
//! Each layer runs as one operation of its backend: the [`RecurrentBackend`] extension of the
//! `recurrent-ops` crate, fused kernels on NdArray and Flex, Burn tensor operations elsewhere. Code
//! generic over the backend bounds it by [`RecurrentBackend`] (and [`RecurrentAutodiffBackend`] to
//! train).
//!
//! This crate knows nothing of MNIST files or of training loops.

mod classifier;
mod config;
mod evaluation;
mod layer;
mod loss;
pub mod parity;
pub mod pytorch;
mod record;
mod stack;

pub use classifier::{RecurrentClassifier, RecurrentClassifierRecord};
pub use config::{ConfigError, ModelConfig, RecurrentInit};
pub use evaluation::Evaluation;
pub use layer::{LayerInit, RecurrentLayer};
pub use loss::cross_entropy;
pub use record::{ModelRecorder, RecordError};
pub use recurrent_ops::{
    Cell, LayerWeights, RecurrentAutodiffBackend, RecurrentBackend, RecurrentState, Sequence,
    fused_kernels_enabled, set_fused_kernels,
};
pub use stack::{RecurrentStack, StackShape};
