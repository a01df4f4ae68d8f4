use std::fmt;

/// The recurrent cell a layer runs: the family the reference material teaches, from the plain tanh
/// RNN to the gated cells that carry information across long sequences.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// PyTorch's `nn.LSTM`: input, forget, candidate and output gates (i, f, g, o).
    #[default]
    Lstm,
    /// The LSTM with peephole connections (Gers, Schraudolph & Schmidhuber, 2002): the input and
    /// forget gates see the previous cell state, the output gate sees the new one.
    PeepholeLstm,
    /// PyTorch's `nn.GRU`: reset, update and new gates (r, z, n).
    Gru,
    /// PyTorch's `nn.RNN` with tanh: `h = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn,
}

impl Cell {
    /// Every cell, in the order the documentation lists them.
    pub const ALL: [Cell; 4] = [Cell::Lstm, Cell::PeepholeLstm, Cell::Gru, Cell::Rnn];

    /// Gates packed into the weight matrices: 4 for the LSTMs, 3 for the GRU, 1 for the tanh RNN.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm | Cell::PeepholeLstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }

    /// Whether the cell carries a cell state `c` beside the hidden state `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(self, Cell::Lstm | Cell::PeepholeLstm)
    }

    /// The name used in configs and file metadata (`lstm`, `peephole_lstm`, `gru`, `rnn`).
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::PeepholeLstm => "peephole_lstm",
            Cell::Gru => "gru",
            Cell::Rnn => "rnn",
        }
    }

    /// PyTorch's gate order in the packed weights, as file metadata spells it.
    pub fn gate_order(self) -> &'static str {
        match self {
            Cell::Lstm | Cell::PeepholeLstm => "i,f,g,o",
            Cell::Gru => "r,z,n",
            Cell::Rnn => "h",
        }
    }

    /// Parses a config or metadata name; `peephole` is accepted for `peephole_lstm`.
    pub fn from_name(name: &str) -> Option<Cell> {
        match name.trim() {
            "peephole" => Some(Cell::PeepholeLstm),
            name => Cell::ALL.into_iter().find(|cell| cell.name() == name),
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
