use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use recurrent_ops::RecurrentBackend;

use crate::{ConfigError, LayerInit, ModelConfig, RecurrentInit, RecurrentStack, StackShape};

/// A stack of recurrent layers with a linear head on the last layer's final hidden state:
/// `[batch, time, features]` → logits.
///
/// With the LSTM cell this is the reference PyTorch program's network: `nn.LSTM(batch_first=True)`
/// then `nn.Linear`. A bidirectional stack's head reads both directions' final hidden states,
/// `cat(h_n[-2], h_n[-1])` in PyTorch's terms.
#[derive(Module, Debug)]
pub struct RecurrentClassifier<B: RecurrentBackend> {
    /// The recurrent stack.
    pub rnn: RecurrentStack<B>,
    /// The classification head, `hidden_size` → `num_classes` (Burn stores its weight as `[in, out]`).
    pub fc: Linear<B>,
}

impl ModelConfig {
    /// Builds a freshly initialized classifier (PyTorch's initialization), after validating the sizes.
    pub fn init<B: RecurrentBackend>(
        &self,
        device: &B::Device,
    ) -> Result<RecurrentClassifier<B>, ConfigError> {
        self.validate()?;
        let model = RecurrentClassifier {
            rnn: RecurrentStack::new(self.stack_shape(), device),
            // Burn's Linear default (Kaiming uniform, gain 1/√3) is PyTorch's U(-1/√in, 1/√in).
            fc: LinearConfig::new(self.directions() * self.hidden_size, self.num_classes)
                .init(device),
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

impl<B: RecurrentBackend> RecurrentClassifier<B> {
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
        let _ = self.fc.weight.val();
        if let Some(bias) = &self.fc.bias {
            let _ = bias.val();
        }
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
            Err(both) => Tensor::cat(both.into_iter().map(|state| state.hidden).collect(), 1),
        };
        self.fc.forward(hidden)
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
