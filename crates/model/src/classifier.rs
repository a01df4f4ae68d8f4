use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, backend::Backend};

use crate::{ConfigError, ModelConfig, StackedLstm};

/// A stacked LSTM with a linear head on the last layer's final hidden state: `[batch, time, features]` → logits.
///
/// The same network as the reference PyTorch program: `nn.LSTM(batch_first=True)` then `nn.Linear`.
#[derive(Module, Debug)]
pub struct LstmClassifier<B: Backend> {
    /// The recurrent stack.
    pub lstm: StackedLstm<B>,
    /// The classification head, `hidden_size` → `num_classes` (Burn stores its weight as `[in, out]`).
    pub fc: Linear<B>,
}

impl ModelConfig {
    /// Builds a freshly initialized classifier (PyTorch's initialization), after validating the sizes.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LstmClassifier<B>, ConfigError> {
        self.validate()?;
        let model = LstmClassifier {
            lstm: StackedLstm::new(
                self.input_size,
                self.hidden_size,
                self.num_layers,
                self.bias,
                device,
            ),
            // Burn's Linear default (Kaiming uniform, gain 1/√3) is PyTorch's U(-1/√in, 1/√in).
            fc: LinearConfig::new(self.hidden_size, self.num_classes).init(device),
        };
        model.materialize();
        Ok(model)
    }
}

impl<B: Backend> LstmClassifier<B> {
    /// Draws every parameter now, in PyTorch's order (per layer: weight_ih, weight_hh, bias_ih, bias_hh;
    /// then the head). Burn initializes parameters lazily, on first use; a clone taken before that
    /// (to save a fresh model, say) would draw its own, different values.
    fn materialize(&self) {
        for layer in &self.lstm.layers {
            let _ = (layer.weight_ih.val(), layer.weight_hh.val());
            for bias in [&layer.bias_ih, &layer.bias_hh].into_iter().flatten() {
                let _ = bias.val();
            }
        }
        let _ = self.fc.weight.val();
        if let Some(bias) = &self.fc.bias {
            let _ = bias.val();
        }
    }

    /// Logits `[batch, classes]` for sequences `[batch, time, features]`.
    pub fn forward(&self, input: Tensor<B, 3>) -> Tensor<B, 2> {
        let states = self.lstm.final_states(input);
        let last = states
            .into_iter()
            .last()
            .expect("a classifier has at least one layer");
        self.fc.forward(last.hidden)
    }

    /// Logits after every time step, `[batch, time, classes]`: the head applied to the last layer's
    /// hidden state as the sequence is read. The final step equals [`forward`](Self::forward).
    pub fn forward_per_step(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc.forward(self.lstm.output_sequence(input))
    }

    /// The sizes this classifier was built with, read back from its parameters.
    pub fn config(&self) -> ModelConfig {
        let first = &self.lstm.layers[0];
        let [hidden_size, num_classes] = self.fc.weight.dims();
        ModelConfig {
            input_size: first.input_size(),
            hidden_size,
            num_layers: self.lstm.layers.len(),
            num_classes,
            bias: first.bias_ih.is_some(),
        }
    }
}
