use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use recurrent_ops::join;

use crate::{
    ConfigError, Head, LayerInit, ModelConfig, RecurrentInit, RecurrentStack, RecurrentState,
    StackShape,
};

/// A sequence model in three stages: an input stage (float features as they are, or token ids
/// through an embedding), a stack of recurrent layers, and a linear head that reads either the last
/// layer's final hidden state (a classifier: [`Head::FinalState`]) or its output at every step (a
/// language model: [`Head::EveryStep`]).
///
/// With the LSTM cell and float features this is the reference PyTorch program's network:
/// `nn.LSTM(batch_first=True)` then `nn.Linear`; with tokens and every step, PyTorch's
/// `word_language_model`: `nn.Embedding` → `nn.LSTM` → `nn.Linear`. A bidirectional stack's
/// final-state head reads both directions' final hidden states, `cat(h_n[-2], h_n[-1])`.
#[derive(Module, Debug)]
pub struct SequenceModel<B: Backend> {
    /// The token embedding, `vocab_size × input_size`, when the inputs are token ids (a record
    /// without it, as every classifier's, loads as `None`).
    pub embedding: Option<Embedding<B>>,
    /// The recurrent stack.
    pub rnn: RecurrentStack<B>,
    /// The head, `directions · hidden_size` → `num_classes` (Burn stores its weight as `[in, out]`).
    pub fc: Linear<B>,
    /// Where the head reads.
    #[module(skip)]
    head: Head,
    /// Dropout on the embedding's output (training only).
    #[module(skip)]
    input_dropout: f64,
    /// Dropout on what the head reads (training only).
    #[module(skip)]
    output_dropout: f64,
}

/// The classifier of the earlier versions: a [`SequenceModel`] whose head reads the final state.
pub type RecurrentClassifier<B> = SequenceModel<B>;
/// Its record.
pub type RecurrentClassifierRecord<B> = SequenceModelRecord<B>;

/// A batch of model inputs.
#[derive(Debug, Clone)]
pub enum Input<B: Backend> {
    /// Float features `[batch, time, input_size]`.
    Features(Tensor<B, 3>),
    /// Token ids `[batch, time]`, each below `vocab_size`.
    Tokens(Tensor<B, 2, Int>),
}

impl ModelConfig {
    /// Builds a freshly initialized classifier (PyTorch's initialization), after validating the sizes.
    pub fn init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<RecurrentClassifier<B>, ConfigError> {
        self.validate()?;
        // PyTorch draws the embedding first (word_language_model's `encoder` comes first); then the
        // stack, then the head.
        let embedding = self.vocab_size.map(|vocab| {
            // nn.Embedding's default: N(0, 1).
            EmbeddingConfig::new(vocab, self.input_size)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 1.0,
                })
                .init(device)
        });
        if let Some(embedding) = &embedding {
            let _ = embedding.weight.val();
        }
        let model = SequenceModel {
            embedding,
            rnn: RecurrentStack::new(self.stack_shape(), device),
            // Burn's Linear default (Kaiming uniform, gain 1/√3) is PyTorch's U(-1/√in, 1/√in).
            fc: LinearConfig::new(self.directions() * self.hidden_size, self.num_classes)
                .init(device),
            head: self.head,
            input_dropout: self.input_dropout,
            output_dropout: self.output_dropout,
        };
        model.materialize();
        Ok(model)
    }

    /// The recurrent stack's sizes.
    pub fn stack_shape(&self) -> StackShape {
        StackShape {
            cell: self.cell,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            bias: self.bias,
            bidirectional: self.bidirectional,
            dropout: self.dropout,
            init: LayerInit {
                forget_bias: self.forget_bias,
                recurrent: self.recurrent_init,
                identity_gate: self.identity_gate_index().ok().flatten(),
            },
        }
    }
}

impl<B: Backend> SequenceModel<B> {
    /// A model of existing parts (an importer's, which checks their shapes); the head placement and
    /// dropout rates from `config`.
    pub(crate) fn from_parts(
        embedding: Option<Embedding<B>>,
        rnn: RecurrentStack<B>,
        fc: Linear<B>,
        config: &ModelConfig,
    ) -> Self {
        Self {
            embedding,
            rnn,
            fc,
            head: config.head,
            input_dropout: config.input_dropout,
            output_dropout: config.output_dropout,
        }
    }

    /// Draws every parameter now, in PyTorch's order (per layer: weight_ih, weight_hh, bias_ih, bias_hh,
    /// then any peephole weights; then the head). Burn initializes parameters lazily, on first use; a
    /// clone taken before that (to save a fresh model, say) would draw its own, different values.
    fn materialize(&self) {
        for layer in &self.rnn.layers {
            let _ = (layer.weight_ih.val(), layer.weight_hh.val());
            let optional = [
                &layer.bias_ih,
                &layer.bias_hh,
                &layer.weight_ci,
                &layer.weight_cf,
                &layer.weight_co,
            ];
            for param in optional.into_iter().flatten() {
                let _ = param.val();
            }
        }
        if let Some(embedding) = &self.embedding {
            let _ = embedding.weight.val();
        }
        let _ = self.fc.weight.val();
        if let Some(bias) = &self.fc.bias {
            let _ = bias.val();
        }
    }

    /// Where the head reads.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The model with another head placement, dropout rates kept (a record's config decides it).
    pub fn with_head(mut self, head: Head) -> Self {
        self.head = head;
        self
    }

    /// What the recurrent stack reads for `input`: features as they are, tokens embedded (then
    /// dropped out, in training).
    ///
    /// # Panics
    /// If `input` is tokens and the model has no embedding, or features and it has one.
    pub fn embed(&self, input: Input<B>) -> Tensor<B, 3> {
        match (input, &self.embedding) {
            (Input::Features(features), None) => features,
            (Input::Tokens(tokens), Some(embedding)) => {
                let embedded = embedding.forward(tokens);
                self.dropout(self.input_dropout, embedded)
            }
            (Input::Features(_), Some(_)) => {
                panic!("this model reads token ids (it has an embedding), not float features")
            }
            (Input::Tokens(_), None) => {
                panic!("this model reads float features (it has no embedding), not token ids")
            }
        }
    }

    fn dropout<const D: usize>(&self, p: f64, x: Tensor<B, D>) -> Tensor<B, D> {
        if p > 0.0 {
            let dropout: Dropout = DropoutConfig::new(p).init();
            dropout.forward(x)
        } else {
            x
        }
    }

    /// Logits at every step `[batch, time, classes]` and every layer's final state, from `state`
    /// (one per layer, bottom first, forward direction before reverse; zeros when `None`): a
    /// window of a longer sequence whose state the caller carries (detach it between windows for
    /// truncated back-propagation through time), or one step at a time (`time` = 1).
    pub fn forward_steps(
        &self,
        input: Input<B>,
        state: Option<Vec<RecurrentState<B>>>,
    ) -> (Tensor<B, 3>, Vec<RecurrentState<B>>) {
        let (sequence, states) = self.rnn.forward_from(self.embed(input), state);
        let sequence = self.dropout(self.output_dropout, sequence);
        (self.fc.forward(sequence), states)
    }

    /// Logits at every step `[batch, time, classes]` of a padded batch whose sequence `b` is
    /// `lengths[b]` steps long (each in `1..=time`; a bidirectional stack reads each within its own
    /// length), with the dropout of training: what a CTC transcriber puts its loss on. The logits
    /// past a length are the head's on a zero state.
    pub fn forward_steps_lengths(&self, input: Input<B>, lengths: &[usize]) -> Tensor<B, 3> {
        let sequence = self
            .rnn
            .output_sequence_lengths(self.embed(input), Some(lengths));
        self.fc.forward(self.dropout(self.output_dropout, sequence))
    }

    /// Logits `[batch, classes]` for sequences `[batch, time, features]`.
    pub fn forward(&self, input: Tensor<B, 3>) -> Tensor<B, 2> {
        self.forward_lengths(input, None)
    }

    /// Logits `[batch, classes]` for a padded batch `[batch, time, features]` whose sequence `b` is
    /// `lengths[b]` steps long (each in `1..=time`; every step when `None`): the head reads each
    /// sequence's final state after its own last step, as PyTorch does on a packed sequence. What
    /// lies past a length, NaN included, changes nothing.
    pub fn forward_lengths(&self, input: Tensor<B, 3>, lengths: Option<&[usize]>) -> Tensor<B, 2> {
        let mut states = self.rnn.final_states_lengths(input, lengths);
        let last = states.split_off(states.len() - self.rnn.directions());
        let hidden = match <[_; 1]>::try_from(last) {
            Ok([only]) => only.hidden,
            Err(both) => join::cat(both.into_iter().map(|state| state.hidden).collect(), 1),
        };
        self.fc.forward(self.dropout(self.output_dropout, hidden))
    }

    /// Logits after every time step, `[batch, time, classes]`: the head applied to the last layer's
    /// hidden state as the sequence is read. The final step equals [`forward`](Self::forward) for a
    /// unidirectional stack; a bidirectional one reads PyTorch's `output[:, t]` at step t, whose
    /// reverse half has seen only steps t and after.
    pub fn forward_per_step(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc.forward(self.rnn.output_sequence(input))
    }

    /// [`forward_per_step`](Self::forward_per_step) of a padded batch whose sequence `b` is
    /// `lengths[b]` steps long; the logits past a length are the head's on a zero state.
    pub fn forward_per_step_lengths(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
    ) -> Tensor<B, 3> {
        self.fc
            .forward(self.rnn.output_sequence_lengths(input, lengths))
    }

    /// The sizes this classifier was built with, read back from its parameters. The initialization
    /// options (`forget_bias`, `recurrent_init`, `identity_gate`), which only shape the initial values,
    /// read back as their defaults.
    pub fn config(&self) -> ModelConfig {
        let first = &self.rnn.layers[0];
        let [_, num_classes] = self.fc.weight.dims();
        ModelConfig {
            cell: first.cell(),
            input_size: first.input_size(),
            vocab_size: self.embedding.as_ref().map(|e| e.weight.dims()[0]),
            head: self.head,
            input_dropout: self.input_dropout,
            output_dropout: self.output_dropout,
            hidden_size: first.hidden_size(),
            num_layers: self.rnn.num_levels(),
            num_classes,
            bias: first.bias_ih.is_some(),
            bidirectional: self.rnn.directions() == 2,
            dropout: self.rnn.dropout(),
            forget_bias: 0.0,
            recurrent_init: RecurrentInit::Pytorch,
            identity_gate: None,
        }
    }
}
