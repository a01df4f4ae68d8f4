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
//! Everything is generic over any Burn `B: Backend` (`AutodiffBackend` to train). Each layer runs as
//! one operation of the `recurrent-ops` crate: the fused kernels where the backend has them (NdArray,
//! Flex, the fused CubeCL backends, and `Autodiff` of each: [`has_kernels`]), Burn tensor operations
//! step by step on any other backend.
//!
//! This crate knows nothing of MNIST files or of training loops.

mod config;
pub mod ctc;
mod evaluation;
#[cfg(all(
    debug_assertions,
    feature = "ndarray",
    not(any(feature = "flex", feature = "wgpu", feature = "cuda"))
))]
#[doc(hidden)]
pub mod instances;
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
    Cell, LayerWeights, RecurrentState, Sequence, fused_kernels_enabled, has_kernels,
    set_fused_kernels,
};
pub use sequence_model::{
    Input, RecurrentClassifier, RecurrentClassifierRecord, SequenceModel, SequenceModelRecord,
};
pub use stack::{RecurrentStack, StackShape};
