use burn::module::Module;
use burn::nn::DropoutConfig;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use recurrent_ops::Sequence;

use crate::{Cell, LayerInit, RecurrentLayer, RecurrentState};

/// A stack of [`RecurrentLayer`]s of one cell: layer k+1 reads layer k's whole output sequence
/// (PyTorch's `num_layers`), optionally in both directions (`bidirectional`) and with dropout between
/// layers (`dropout`).
#[derive(Module, Debug)]
pub struct RecurrentStack<B: Backend> {
    /// The layers, bottom first. With two directions each level holds two: the forward layer, then
    /// the one that reads the sequence backwards (PyTorch's `_l{k}` and `_l{k}_reverse`).
    pub layers: Vec<RecurrentLayer<B>>,
    /// Directions per level: 1, or 2 when bidirectional.
    #[module(skip)]
    directions: usize,
    /// Dropout probability on the output of every level but the last, in training only.
    #[module(skip)]
    dropout: f64,
}

/// Sizes of a [`RecurrentStack`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StackShape {
    /// The cell of every layer.
    pub cell: Cell,
    /// Features per step of the input sequence.
    pub input_size: usize,
    /// Hidden size of every layer.
    pub hidden_size: usize,
    /// Levels of the stack (PyTorch's `num_layers`).
    pub num_layers: usize,
    /// Whether the layers carry biases.
    pub bias: bool,
    /// Whether every level also reads the sequence backwards.
    pub bidirectional: bool,
    /// Dropout probability between levels, in training only.
    pub dropout: f64,
    /// How every layer's parameters start (see [`RecurrentLayer::new`]).
    pub init: LayerInit,
}

impl StackShape {
    /// Directions per level: 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Features per step that level `k` reads: the input's at the bottom, every direction's hidden
    /// state above.
    pub fn level_input(&self, k: usize) -> usize {
        if k == 0 {
            self.input_size
        } else {
            self.hidden_size * self.directions()
        }
    }
}

impl<B: Backend> RecurrentStack<B> {
    /// PyTorch-initialized layers, drawn level by level, forward direction first.
    pub fn new(shape: StackShape, device: &B::Device) -> Self {
        let layers = (0..shape.num_layers)
            .flat_map(|k| std::iter::repeat_n(k, shape.directions()))
            .map(|k| {
                RecurrentLayer::new(
                    shape.cell,
                    shape.level_input(k),
                    shape.hidden_size,
                    shape.bias,
                    shape.init,
                    device,
                )
            })
            .collect();
        Self::from_layers(layers, shape.directions(), shape.dropout)
    }

    /// A stack of existing layers (bottom first, `directions` per level); importers check the shapes.
    pub(crate) fn from_layers(
        layers: Vec<RecurrentLayer<B>>,
        directions: usize,
        dropout: f64,
    ) -> Self {
        Self {
            layers,
            directions,
            dropout,
        }
    }

    /// Directions per level: 1, or 2 when bidirectional.
    pub fn directions(&self) -> usize {
        self.directions
    }

    /// Levels of the stack (PyTorch's `num_layers`).
    pub fn num_levels(&self) -> usize {
        self.layers.len() / self.directions
    }

    /// Dropout probability between levels.
    pub fn dropout(&self) -> f64 {
        self.dropout
    }

    /// Final states of every layer (bottom first; per level the forward direction, then the reverse
    /// one, whose final state is the one after reading the first step) after reading `input`
    /// `[batch, time, features]` from zeros.
    pub fn final_states(&self, input: Tensor<B, 3>) -> Vec<RecurrentState<B>> {
        self.run(input, None, None, false).1
    }

    /// [`final_states`](Self::final_states) of a padded batch whose sequence `b` is `lengths[b]` steps
    /// long: each the state after the sequence's own last step (the reverse direction's, after
    /// reading the sequence's first step, having started at its last), as PyTorch's `h_n` of a packed
    /// sequence.
    pub fn final_states_lengths(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
    ) -> Vec<RecurrentState<B>> {
        self.run(input, lengths, None, false).1
    }

    /// The last level's output after every time step, `[batch, time, directions·H]`: PyTorch's
    /// `output` (with two directions, step t holds the forward state after step t and the reverse
    /// state after reading steps T−1 down to t).
    pub fn output_sequence(&self, input: Tensor<B, 3>) -> Tensor<B, 3> {
        self.output_sequence_lengths(input, None)
    }

    /// [`output_sequence`](Self::output_sequence) of a padded batch whose sequence `b` is
    /// `lengths[b]` steps long: zero past each length, as `pad_packed_sequence` gives.
    pub fn output_sequence_lengths(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
    ) -> Tensor<B, 3> {
        self.run(input, lengths, None, true)
            .0
            .expect("the last level keeps its sequence when asked to")
    }

    /// The last level's output after every step, `[batch, time, directions·H]`, and every layer's
    /// final state, starting from `initial` (one state per layer, in [`final_states`](Self::final_states)'
    /// order; zeros when `None`): a window of a longer sequence whose state the caller carries, or
    /// one step at a time.
    ///
    /// # Panics
    /// If `initial` does not hold one state per layer.
    pub fn forward_from(
        &self,
        input: Tensor<B, 3>,
        initial: Option<Vec<RecurrentState<B>>>,
    ) -> (Tensor<B, 3>, Vec<RecurrentState<B>>) {
        if let Some(initial) = &initial {
            assert_eq!(
                initial.len(),
                self.layers.len(),
                "one initial state per layer (directions included)"
            );
        }
        let (sequence, states) = self.run(input, None, initial, true);
        (
            sequence.expect("the last level keeps its sequence when asked to"),
            states,
        )
    }

    fn run(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        initial: Option<Vec<RecurrentState<B>>>,
        keep_last_sequence: bool,
    ) -> (Option<Tensor<B, 3>>, Vec<RecurrentState<B>>) {
        let device = input.device();
        let mut initial = initial.map(Vec::into_iter);
        let mut next_initial = move || initial.as_mut().and_then(Iterator::next);
        let mut states = Vec::with_capacity(self.layers.len());
        // Each layer hands the next its output in the form it made it (see `Sequence`).
        let mut sequence = Sequence::Whole(input);
        let levels = self.layers.len() / self.directions;
        for (k, level) in self.layers.chunks(self.directions).enumerate() {
            if k > 0 && self.dropout > 0.0 {
                let dropout = DropoutConfig::new(self.dropout).init();
                sequence = sequence.map_values(|values| dropout.forward(values));
            }
            // Reversed within each sequence's length when lengths are given, else as a whole.
            let reverse = |sequence: Sequence<B>| match lengths {
                Some(lengths) => recurrent_ops::lengths::reverse_within(sequence, lengths, &device),
                None => sequence.reversed(),
            };
            // The last level's per-step outputs, when nobody reads them, are never made.
            if k + 1 == levels && !keep_last_sequence {
                for (layer, reversed) in level.iter().zip([false, true]) {
                    let input = if reversed {
                        reverse(sequence.clone())
                    } else {
                        sequence.clone()
                    };
                    states.push(layer.final_state_lengths(input, next_initial(), lengths));
                }
                return (None, states);
            }
            sequence = match level {
                [forward] => {
                    let (output, state) =
                        forward.forward_lengths(sequence, next_initial(), lengths);
                    states.push(state);
                    output
                }
                [forward, backward] => {
                    let (ahead, state) =
                        forward.forward_lengths(sequence.clone(), next_initial(), lengths);
                    states.push(state);
                    let (behind, state) =
                        backward.forward_lengths(reverse(sequence), next_initial(), lengths);
                    states.push(state);
                    ahead.concat_features(reverse(behind), &device)
                }
                _ => unreachable!("a level has one or two directions"),
            };
        }
        let sequence = keep_last_sequence.then(|| sequence.into_whole(&device));
        (sequence, states)
    }
}
