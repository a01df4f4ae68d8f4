//! The native-Burn baseline: Burn's own `burn::nn::Lstm`, stacked like the config's model, with a
//! Linear head on the last layer's final hidden state. Users see what plain Burn gives next to the
//! fused layers.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig, Lstm, LstmConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use model::ModelConfig;

/// `num_layers` `burn::nn::Lstm` layers and a Linear head, initialized like PyTorch.
#[derive(Module, Debug)]
pub struct BurnLstm<B: Backend> {
    layers: Vec<Lstm<B>>,
    fc: Linear<B>,
}

impl<B: Backend> BurnLstm<B> {
    /// The sizes of `config` (an LSTM config; other cells have no `burn::nn` counterpart here).
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let bound = 1.0 / (config.hidden_size as f64).sqrt();
        let layers = (0..config.num_layers)
            .map(|k| {
                let input = if k == 0 {
                    config.input_size
                } else {
                    config.hidden_size
                };
                LstmConfig::new(input, config.hidden_size, config.bias)
                    .with_initializer(Initializer::Uniform {
                        min: -bound,
                        max: bound,
                    })
                    .init(device)
            })
            .collect();
        Self {
            layers,
            fc: LinearConfig::new(config.hidden_size, config.num_classes).init(device),
        }
    }

    /// Logits `[batch, classes]` for sequences `[batch, time, features]`.
    pub fn forward(&self, input: Tensor<B, 3>) -> Tensor<B, 2> {
        let mut sequence = input;
        let mut last = None;
        for layer in &self.layers {
            let (output, state) = layer.forward(sequence, None);
            sequence = output;
            last = Some(state.hidden);
        }
        self.fc
            .forward(last.expect("a stack has at least one layer"))
    }
}
