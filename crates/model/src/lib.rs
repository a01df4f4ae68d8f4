//! Recurrent sequence models for Burn, generic over the backend.
//!
//! The centrepiece is [`SequenceModel`]: an input stage (float features `[batch, time, features]`,
//! or token ids through an embedding), a stack of recurrent layers, and a linear head on the last
//! layer's final hidden state (a classifier, [`RecurrentClassifier`]) or on its output at every step
//! (a language model), with the state passed in and out for windows or single steps. The
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

mod config;
pub mod ctc;
mod evaluation;
mod layer;
mod loss;
pub mod parity;
pub mod pytorch;
mod record;
mod sequence_model;
mod stack;

pub use config::{ConfigError, Head, ModelConfig, RecurrentInit};
pub use evaluation::{Evaluation, TranscriptionExamples};
pub use layer::{LayerInit, RecurrentLayer};
pub use loss::{cross_entropy, cross_entropy_ignoring, log_softmax};
pub use record::{ModelRecorder, RecordError};
pub use recurrent_ops::{
    Cell, LayerWeights, RecurrentAutodiffBackend, RecurrentBackend, RecurrentState, Sequence,
    fused_kernels_enabled, set_fused_kernels,
};
pub use sequence_model::{
    Input, RecurrentClassifier, RecurrentClassifierRecord, SequenceModel, SequenceModelRecord,
};
pub use stack::{RecurrentStack, StackShape};
