use burn::module::{Initializer, Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Tensor, backend::Backend};

/// Hidden and cell state of one LSTM layer, each `[batch, hidden]`.
#[derive(Debug, Clone)]
pub struct LstmState<B: Backend> {
    /// Hidden state `h`.
    pub hidden: Tensor<B, 2>,
    /// Cell state `c`.
    pub cell: Tensor<B, 2>,
}

/// One LSTM layer with the four gates fused, laid out like PyTorch's `nn.LSTM` layer.
///
/// Weights are stored transposed with respect to PyTorch (`[in, 4H]` instead of `[4H, in]`) so that a
/// step is one `x @ W` matmul; gate columns keep PyTorch's order i, f, g, o. The input projection of
/// the whole sequence is computed once, so each time step costs a single `[batch, H] @ [H, 4H]` matmul.
#[derive(Module, Debug)]
pub struct LstmLayer<B: Backend> {
    /// Input weights `[input_size, 4H]`, gate columns i, f, g, o.
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Recurrent weights `[H, 4H]`, gate columns i, f, g, o.
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input bias `[4H]` (PyTorch's `bias_ih`).
    pub bias_ih: Option<Param<Tensor<B, 1>>>,
    /// Recurrent bias `[4H]` (PyTorch's `bias_hh`); kept apart from `bias_ih` so that SGD updates match.
    pub bias_hh: Option<Param<Tensor<B, 1>>>,
    hidden_size: usize,
}

impl<B: Backend> LstmLayer<B> {
    /// A layer initialized like PyTorch: every weight and bias drawn from U(-1/√H, 1/√H).
    pub fn new(input_size: usize, hidden_size: usize, bias: bool, device: &B::Device) -> Self {
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let gates = 4 * hidden_size;
        let bias_param = || bias.then(|| init.init([gates], device));
        Self {
            weight_ih: init.init([input_size, gates], device),
            weight_hh: init.init([hidden_size, gates], device),
            bias_ih: bias_param(),
            bias_hh: bias_param(),
            hidden_size,
        }
    }

    /// A layer from existing parameters: `weight_ih` `[in, 4H]`, `weight_hh` `[H, 4H]`, biases `[4H]`.
    ///
    /// Used by importers, which check the shapes first.
    pub(crate) fn from_params(
        weight_ih: Param<Tensor<B, 2>>,
        weight_hh: Param<Tensor<B, 2>>,
        bias_ih: Option<Param<Tensor<B, 1>>>,
        bias_hh: Option<Param<Tensor<B, 1>>>,
    ) -> Self {
        let hidden_size = weight_hh.dims()[0];
        Self {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            hidden_size,
        }
    }

    /// Hidden size H of this layer.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Features per time step this layer reads.
    pub fn input_size(&self) -> usize {
        self.weight_ih.dims()[0]
    }

    /// Runs the layer over `input` `[batch, time, in]` from `state` (zeros when `None`).
    ///
    /// Returns the output sequence `[batch, time, H]` when `keep_sequence` is true (a following layer
    /// needs it; the last layer of a classifier does not), and the final state.
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<LstmState<B>>,
        keep_sequence: bool,
    ) -> (Option<Tensor<B, 3>>, LstmState<B>) {
        let [batch, time, features] = input.dims();
        let h = self.hidden_size;
        let mut projected = input
            .reshape([batch * time, features])
            .matmul(self.weight_ih.val());
        let biases = [&self.bias_ih, &self.bias_hh];
        for bias in biases.into_iter().flatten() {
            projected = projected + bias.val().unsqueeze::<2>();
        }
        let projected = projected.reshape([batch, time, 4 * h]);
        let weight_hh = self.weight_hh.val();

        let mut state = state;
        let mut outputs = Vec::with_capacity(if keep_sequence { time } else { 0 });
        for t in 0..time {
            let x_t = projected.clone().narrow(1, t, 1).reshape([batch, 4 * h]);
            let gates = match &state {
                Some(s) => x_t + s.hidden.clone().matmul(weight_hh.clone()),
                None => x_t,
            };
            let act = sigmoid(gates.clone());
            let input_gate = act.clone().narrow(1, 0, h);
            let forget_gate = act.clone().narrow(1, h, h);
            let output_gate = act.narrow(1, 3 * h, h);
            let candidate = gates.narrow(1, 2 * h, h).tanh();
            let cell = match state {
                Some(s) => forget_gate * s.cell + input_gate * candidate,
                None => input_gate * candidate,
            };
            let hidden = output_gate * cell.clone().tanh();
            if keep_sequence {
                outputs.push(hidden.clone());
            }
            state = Some(LstmState { hidden, cell });
        }
        let state = state.unwrap_or_else(|| {
            let zeros = Tensor::zeros([batch, h], &projected.device());
            LstmState {
                hidden: zeros.clone(),
                cell: zeros,
            }
        });
        let sequence = keep_sequence.then(|| {
            if outputs.is_empty() {
                Tensor::zeros([batch, 0, h], &state.hidden.device())
            } else {
                Tensor::stack(outputs, 1)
            }
        });
        (sequence, state)
    }
}

/// A stack of [`LstmLayer`]s: layer k+1 reads layer k's whole output sequence (PyTorch's `num_layers`).
#[derive(Module, Debug)]
pub struct StackedLstm<B: Backend> {
    /// The layers, bottom first.
    pub layers: Vec<LstmLayer<B>>,
}

impl<B: Backend> StackedLstm<B> {
    /// `num_layers` PyTorch-initialized layers; the first reads `input_size` features, the rest `hidden_size`.
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bias: bool,
        device: &B::Device,
    ) -> Self {
        let layers = (0..num_layers)
            .map(|k| {
                let layer_input = if k == 0 { input_size } else { hidden_size };
                LstmLayer::new(layer_input, hidden_size, bias, device)
            })
            .collect();
        Self { layers }
    }

    /// Final states of every layer (bottom first) after reading `input` `[batch, time, features]` from zeros.
    pub fn final_states(&self, input: Tensor<B, 3>) -> Vec<LstmState<B>> {
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
    ) -> (Option<Tensor<B, 3>>, Vec<LstmState<B>>) {
        let mut states = Vec::with_capacity(self.layers.len());
        let mut sequence = Some(input);
        let last = self.layers.len().saturating_sub(1);
        for (k, layer) in self.layers.iter().enumerate() {
            let keep = k < last || keep_last_sequence;
            let input = sequence
                .take()
                .expect("every non-final layer keeps its sequence");
            let (output, state) = layer.forward(input, None, keep);
            sequence = output;
            states.push(state);
        }
        (sequence, states)
    }
}
