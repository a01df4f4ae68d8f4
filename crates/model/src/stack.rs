use burn::module::Module;
use burn::tensor::Tensor;
use recurrent_ops::{RecurrentBackend, Sequence};

use crate::{Cell, RecurrentLayer, RecurrentState};

/// A stack of [`RecurrentLayer`]s of one cell: layer k+1 reads layer k's whole output sequence
/// (PyTorch's `num_layers`).
#[derive(Module, Debug)]
pub struct RecurrentStack<B: RecurrentBackend> {
    /// The layers, bottom first.
    pub layers: Vec<RecurrentLayer<B>>,
}

impl<B: RecurrentBackend> RecurrentStack<B> {
    /// `num_layers` PyTorch-initialized layers; the first reads `input_size` features, the rest `hidden_size`.
    pub fn new(
        cell: Cell,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bias: bool,
        device: &B::Device,
    ) -> Self {
        let layers = (0..num_layers)
            .map(|k| {
                let layer_input = if k == 0 { input_size } else { hidden_size };
                RecurrentLayer::new(cell, layer_input, hidden_size, bias, device)
            })
            .collect();
        Self { layers }
    }

    /// Final states of every layer (bottom first) after reading `input` `[batch, time, features]` from zeros.
    pub fn final_states(&self, input: Tensor<B, 3>) -> Vec<RecurrentState<B>> {
        self.run(input, false).1
    }

    /// The last layer's hidden state after every time step, `[batch, time, H]`.
    pub fn output_sequence(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        self.run(input, true)
            .0
            .expect("the last layer keeps its sequence when asked to")
    }

    fn run(
        &self,
        input: Tensor<B, 3>,
        keep_last_sequence: bool,
    ) -> (Option<Tensor<B, 3>>, Vec<RecurrentState<B>>) {
        let mut states = Vec::with_capacity(self.layers.len());
        // Each layer hands the next its output in the form it made it (see `Sequence`).
        let mut sequence = Sequence::Whole(input);
        for layer in &self.layers {
            let (output, state) = layer.forward_sequence(sequence, None);
            sequence = output;
            states.push(state);
        }
        let sequence = keep_last_sequence.then(|| {
            let last = states.last().expect("a stack has at least one layer");
            sequence.into_whole(&last.hidden.device())
        });
        (sequence, states)
    }
}
