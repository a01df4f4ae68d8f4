//! How one layer's kernel call is laid out on a device: units per cube, sequences per cube, cubes,
//! and whether a step's state fits the device's workgroup memory at all.

use burn_cubecl::CubeRuntime;
use cubecl::prelude::*;

use super::kernels;

/// Units a cube is filled to with sequences of a small layer: several sequences share a cube's
/// barriers and its reads of the recurrent weights.
const PACKED_UNITS: usize = 256;

/// The most recurrent weights (`G·H`, one unit's share) a unit holds in registers: the reference
/// model's LSTM (H = 10, 40 weights) does; wider layers stage them in workgroup memory.
const OWN_WEIGHTS: usize = 64;

/// The most input weights (`G·I`, one unit's share) a unit holds in registers to project the input
/// itself in the forward kernel, when its recurrent weights sit in registers too: the reference
/// model's first layer has 112.
const OWN_PROJECTION: usize = 128;

/// The most parameter-gradient rows (`I + H + 2`) whose sums one unit of the parameter-gradient
/// kernel keeps in registers; wider layers leave the sums to Burn's tiled matrix products. The
/// reference model's layers have 40 and 22.
const SUMMED_ROWS: usize = 64;

/// Sums one unit of the parameter-gradient kernel keeps in registers: as many neighbouring gate
/// columns as fit, each step's input and hidden values then serving them all.
const SUMMED_REGISTERS: usize = 128;

/// Rows (`batch · time`) one cube of the parameter-gradient kernel sums at least, in whole sequences.
const GRADIENT_ROWS: usize = 256;

/// Multiprocessors assumed where the runtime does not report them (wgpu): a mid-range GPU's count,
/// so that packing sequences never leaves a GPU's multiprocessors idle at a training batch of 64.
const ASSUMED_MULTIPROCESSORS: usize = 64;

/// What the device allows, from CubeCL's properties of its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of shared (workgroup) memory one cube may use.
    pub shared_memory: usize,
    /// Units one cube may have.
    pub units: usize,
    /// Units a cube may have along x and along y.
    pub cube_dim: (usize, usize),
    /// Cubes a launch may have along x.
    pub cubes: usize,
    /// Units that run in lockstep (a warp, a SIMD group): a sequence's units are a whole number of them.
    pub plane: usize,
    /// Multiprocessors the device runs cubes on at once, where the runtime reports them (CUDA does,
    /// wgpu does not: [`ASSUMED_MULTIPROCESSORS`] stands in).
    pub multiprocessors: Option<usize>,
}

impl Limits {
    /// The limits of `device`, read once per call from its compute client.
    pub fn of<R: CubeRuntime>(device: &R::Device) -> Self {
        let client = R::client(device);
        let hardware = &client.properties().hardware;
        Limits {
            shared_memory: hardware.max_shared_memory_size,
            units: hardware.max_units_per_cube as usize,
            cube_dim: (
                hardware.max_cube_dim.0 as usize,
                hardware.max_cube_dim.1 as usize,
            ),
            cubes: hardware.max_cube_count.0 as usize,
            plane: (hardware.plane_size_max as usize).max(1),
            multiprocessors: hardware.num_streaming_multiprocessors.map(|n| n as usize),
        }
    }
}

/// Why a layer does not run the kernels on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// Nothing to run: no sequence, step or hidden unit.
    Empty,
    /// One sequence's step state needs more workgroup memory than the device offers.
    Memory {
        /// Bytes one sequence needs.
        needed: usize,
        /// Bytes the device offers a cube.
        offered: usize,
    },
    /// The batch needs more cubes than one launch may have.
    Batch,
}

/// The sizes of one kernel call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The cell's comptime code.
    pub cell: u32,
    /// Sequences of the batch.
    pub batch: usize,
    /// Time steps.
    pub time: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Sequences one cube runs side by side (its units along y).
    pub sequences: usize,
    /// Units per sequence (along x), striding over the hidden units.
    pub units: usize,
    /// Where the kernels read the recurrent weights from at every step: each unit's own in registers
    /// (small layers), a copy in the cube's workgroup memory (when it fits beside the state), or
    /// global memory ([`kernels::WEIGHTS_OWN`], [`kernels::WEIGHTS_SHARED`], [`kernels::WEIGHTS_GLOBAL`]).
    pub weights: u32,
    /// Whether the backward keeps two buffers of a step's gate gradients, which saves a barrier a step:
    /// where they fit beside the sequences the cube packs.
    pub double_buffered: bool,
    /// Whether the layer starts from a given state; the kernels start from zeros, which they do not
    /// read, otherwise. Set by the caller ([`Call::starting_from_state`]); `plan` leaves it `false`.
    pub initial_state: bool,
}

impl Call {
    /// The same call for a layer that starts from a given state (`true`) or from zeros.
    pub fn starting_from_state(self, initial_state: bool) -> Self {
        Call {
            initial_state,
            ..self
        }
    }

    /// Lays a layer out on a device: as many units per sequence as it has hidden units (whole planes,
    /// within the device's limit), then several sequences per cube while the cube stays within
    /// [`PACKED_UNITS`] (or one sequence's units, if more), the device's memory and its units, and the
    /// batch still gives every multiprocessor a cube.
    pub fn plan(
        cell: u32,
        [batch, time, hidden]: [usize; 3],
        limits: &Limits,
    ) -> Result<Call, Unfit> {
        if batch == 0 || time == 0 || hidden == 0 {
            return Err(Unfit::Empty);
        }
        let needed = step_bytes(cell, hidden);
        if needed > limits.shared_memory {
            return Err(Unfit::Memory {
                needed,
                offered: limits.shared_memory,
            });
        }
        let units = hidden
            .next_multiple_of(limits.plane.max(1))
            .min(limits.units)
            .min(limits.cube_dim.0)
            .max(1);
        let multiprocessors = limits
            .multiprocessors
            .unwrap_or(ASSUMED_MULTIPROCESSORS)
            .max(1);
        let own = units >= hidden && kernels::gate_count(cell) as usize * hidden <= OWN_WEIGHTS;
        // Small layers' backward exchanges its carry through buffers of its own.
        let needed = if own {
            needed.max(own_step_bytes(cell, hidden))
        } else {
            needed
        };
        let weights = weight_bytes(cell, hidden);
        let staged = !own && needed + weights <= limits.shared_memory;
        let available = limits.shared_memory - if staged { weights } else { 0 };
        let sequences = (PACKED_UNITS.max(units) / units)
            .min(limits.units / units)
            .min(available / needed)
            .min(limits.cube_dim.1)
            .min(batch.div_ceil(multiprocessors))
            .max(1);
        let double_buffered = sequences * (needed + gate_bytes(cell, hidden)) <= available;
        let call = Call {
            cell,
            batch,
            time,
            hidden,
            sequences,
            units,
            weights: if own {
                kernels::WEIGHTS_OWN
            } else if staged {
                kernels::WEIGHTS_SHARED
            } else {
                kernels::WEIGHTS_GLOBAL
            },
            double_buffered,
            initial_state: false,
        };
        if call.cube_count() > limits.cubes {
            return Err(Unfit::Batch);
        }
        Ok(call)
    }

    pub fn gates(&self) -> usize {
        kernels::gate_count(self.cell) as usize * self.hidden
    }

    /// Whether the forward kernel projects an input of `inputs` features per step itself (each unit
    /// its `G·I` input weights in registers), rather than reading a product launched before it: for
    /// small layers, whose recurrent weights sit in registers, up to [`OWN_PROJECTION`] weights.
    pub fn projects(&self, inputs: usize) -> bool {
        self.weights == kernels::WEIGHTS_OWN
            && inputs > 0
            && kernels::gate_count(self.cell) as usize * inputs <= OWN_PROJECTION
    }

    /// The launch of the parameter-gradient kernel for this layer reading `inputs` features per
    /// step, or `None` when the layer has more than [`SUMMED_ROWS`] parameter rows or more gate
    /// columns than a cube has units.
    pub fn parameter_launch(&self, inputs: usize, limits: &Limits) -> Option<ParameterLaunch> {
        let rows = kernels::parameter_rows(inputs as u32, self.hidden as u32);
        let span = (SUMMED_REGISTERS / rows).max(1);
        let units = self.gates().div_ceil(span);
        if rows > SUMMED_ROWS || units > limits.units.min(limits.cube_dim.0) {
            return None;
        }
        let chunk = GRADIENT_ROWS.div_ceil(self.time).min(self.batch).max(1);
        let chunks = self.batch.div_ceil(chunk);
        (chunks <= limits.cubes).then_some(ParameterLaunch {
            chunk,
            chunks,
            units,
            span,
        })
    }

    /// `[batch, time + S, H]`.
    pub fn packed_shape(&self) -> [usize; 3] {
        [
            self.batch,
            self.time + kernels::state_rows(self.cell),
            self.hidden,
        ]
    }

    /// Values per step and sequence of the residuals (none for the tanh RNN).
    pub fn residual_width(&self) -> usize {
        match self.cell {
            kernels::RNN => 0,
            cell => kernels::residual_width(cell, self.hidden as u32),
        }
    }

    fn cube_count(&self) -> usize {
        self.batch.div_ceil(self.sequences)
    }

    /// The launch's cubes: one per `sequences` sequences.
    pub fn cubes(&self) -> CubeCount {
        CubeCount::Static(self.cube_count() as u32, 1, 1)
    }

    /// A cube's units: `units` per sequence along x, `sequences` along y.
    pub fn cube_dim(&self) -> CubeDim {
        CubeDim::new_2d(self.units as u32, self.sequences as u32)
    }
}

/// How the parameter-gradient kernel runs: `chunk` sequences per cube, `chunks` cubes, `span` gate
/// columns per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterLaunch {
    /// Sequences one cube sums.
    pub chunk: usize,
    /// Cubes, each writing one partial sum of every parameter gradient.
    pub chunks: usize,
    /// Units per cube, covering the layer's gate columns.
    pub units: usize,
    /// Neighbouring gate columns per unit.
    pub span: usize,
}

/// Bytes of the recurrent weights (`G·H · H` floats), which a cube stages in its workgroup memory
/// when they fit beside one sequence's state.
pub fn weight_bytes(cell: u32, hidden: usize) -> usize {
    kernels::gate_count(cell) as usize * hidden * hidden * size_of::<f32>()
}

/// Bytes of one step's gate gradients (`G·H` floats), which the backward keeps a second buffer of when
/// it fits.
pub fn gate_bytes(cell: u32, hidden: usize) -> usize {
    kernels::gate_count(cell) as usize * hidden * size_of::<f32>()
}

/// Bytes of workgroup memory one sequence's step takes in the larger of the two kernels, the backward:
/// three `[H]` vectors and one `[G·H]` vector (the forward takes three `[H]` vectors).
pub fn step_bytes(cell: u32, hidden: usize) -> usize {
    (3 + kernels::gate_count(cell) as usize) * hidden * size_of::<f32>()
}

/// Bytes of workgroup memory one sequence's step takes in the backward of a small layer
/// ([`kernels::recurrence_backward_own`]): two buffers of the values its units exchange.
pub fn own_step_bytes(cell: u32, hidden: usize) -> usize {
    2 * kernels::exchange_len(cell, hidden as u32) * size_of::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WebGPU's guaranteed minimum, which wgpu on lavapipe exceeds.
    fn webgpu() -> Limits {
        Limits {
            shared_memory: 16 * 1024,
            units: 256,
            cube_dim: (256, 256),
            cubes: 65_535,
            plane: 32,
            multiprocessors: None,
        }
    }

    /// An H200 as CUDA reports it.
    fn hopper() -> Limits {
        Limits {
            shared_memory: 227 * 1024,
            units: 1024,
            cube_dim: (1024, 1024),
            cubes: i32::MAX as usize,
            plane: 32,
            multiprocessors: Some(132),
        }
    }

    fn plan(cell: u32, batch: usize, hidden: usize, limits: &Limits) -> Result<Call, Unfit> {
        Call::plan(cell, [batch, 3, hidden], limits)
    }

    #[test]
    fn the_largest_hidden_sizes_fill_the_devices_workgroup_memory() {
        // 3 vectors of H and one of G·H floats: 7H for the LSTMs, 6H for the GRU, 4H for the RNN.
        for (limits, lstm, gru, rnn) in [(webgpu(), 585, 682, 1024), (hopper(), 8301, 9685, 14528)]
        {
            for (cell, largest) in [
                (kernels::LSTM, lstm),
                (kernels::PEEPHOLE_LSTM, lstm),
                (kernels::GRU, gru),
                (kernels::RNN, rnn),
            ] {
                assert!(
                    plan(cell, 2, largest, &limits).is_ok(),
                    "cell {cell}, H = {largest}"
                );
                assert_eq!(
                    plan(cell, 2, largest + 1, &limits),
                    Err(Unfit::Memory {
                        needed: step_bytes(cell, largest + 1),
                        offered: limits.shared_memory
                    }),
                    "cell {cell}, H = {}",
                    largest + 1
                );
            }
        }
    }

    #[test]
    fn empty_calls_do_not_run() {
        for [batch, time, hidden] in [[2, 3, 0], [0, 3, 8], [2, 0, 8]] {
            assert_eq!(
                Call::plan(kernels::GRU, [batch, time, hidden], &webgpu()),
                Err(Unfit::Empty)
            );
        }
    }

    #[test]
    fn units_cover_the_hidden_units_in_whole_planes_within_the_device() {
        assert_eq!(plan(kernels::RNN, 1, 10, &webgpu()).unwrap().units, 32);
        assert_eq!(plan(kernels::LSTM, 1, 10, &webgpu()).unwrap().units, 32);
        assert_eq!(plan(kernels::LSTM, 1, 100, &webgpu()).unwrap().units, 128);
        assert_eq!(plan(kernels::LSTM, 1, 300, &webgpu()).unwrap().units, 256);
        assert_eq!(plan(kernels::LSTM, 1, 500, &hopper()).unwrap().units, 512);
        assert_eq!(plan(kernels::LSTM, 1, 1500, &hopper()).unwrap().units, 1024);
        let simd8 = Limits {
            plane: 8,
            ..webgpu()
        };
        assert_eq!(plan(kernels::LSTM, 1, 10, &simd8).unwrap().units, 16);
    }

    #[test]
    fn small_layers_share_cubes_while_every_multiprocessor_keeps_one() {
        // The reference model's LSTM (H = 10: 32 units) at a training batch of 64: one sequence per
        // cube keeps 64 multiprocessors (assumed on wgpu) or 132 (an H200) busy.
        let call = plan(kernels::LSTM, 64, 10, &webgpu()).unwrap();
        assert_eq!((call.sequences, call.cube_count()), (1, 64));
        assert!(matches!(call.cubes(), CubeCount::Static(64, 1, 1)));
        assert_eq!(plan(kernels::LSTM, 64, 10, &hopper()).unwrap().sequences, 1);
        // Inference at 1 000: eight sequences fill 256 units.
        let call = plan(kernels::LSTM, 1000, 10, &webgpu()).unwrap();
        assert_eq!((call.sequences, call.cube_count()), (8, 125));
        assert!(matches!(call.cube_dim(), CubeDim { x: 32, y: 8, z: 1 }));
        assert_eq!(
            plan(kernels::LSTM, 1000, 10, &hopper()).unwrap().sequences,
            8
        );
        // A batch that does not divide: the last cube runs the remainder.
        let call = plan(kernels::LSTM, 1001, 10, &webgpu()).unwrap();
        assert_eq!((call.sequences, call.cube_count()), (8, 126));
        // Never more units than PACKED_UNITS, nor sequences than memory holds: wide layers run one
        // per cube.
        assert_eq!(
            plan(kernels::LSTM, 1000, 300, &webgpu()).unwrap().sequences,
            1
        );
        assert_eq!(
            plan(kernels::LSTM, 1000, 128, &webgpu()).unwrap().sequences,
            2
        );
        assert_eq!(
            plan(kernels::LSTM, 1000, 500, &hopper()).unwrap().sequences,
            1
        );
    }

    #[test]
    fn recurrent_weights_sit_in_registers_then_workgroup_memory_then_global_memory() {
        use kernels::{GRU, LSTM, RNN, WEIGHTS_GLOBAL, WEIGHTS_OWN, WEIGHTS_SHARED};
        let at = |cell, hidden, limits: &Limits| plan(cell, 64, hidden, limits).unwrap().weights;
        // Up to 64 weights a unit: the reference model's LSTM (40), an RNN of 64.
        assert_eq!(at(LSTM, 10, &webgpu()), WEIGHTS_OWN);
        assert_eq!(at(LSTM, 16, &webgpu()), WEIGHTS_OWN);
        assert_eq!(at(GRU, 21, &webgpu()), WEIGHTS_OWN);
        assert_eq!(at(RNN, 64, &webgpu()), WEIGHTS_OWN);
        // Then all G·H·H of them in workgroup memory beside one sequence's state: 16H² + 28H bytes
        // for the LSTM, within 16 KiB up to H = 31.
        assert_eq!(at(LSTM, 17, &webgpu()), WEIGHTS_SHARED);
        assert_eq!(at(LSTM, 31, &webgpu()), WEIGHTS_SHARED);
        assert_eq!(at(LSTM, 32, &webgpu()), WEIGHTS_GLOBAL);
        assert_eq!(at(LSTM, 100, &hopper()), WEIGHTS_SHARED);
        assert_eq!(at(LSTM, 300, &hopper()), WEIGHTS_GLOBAL);
        // Staged weights leave the rest of the memory to packed sequences (672 bytes each at H = 24).
        let call = plan(LSTM, 1000, 24, &webgpu()).unwrap();
        assert_eq!((call.weights, call.sequences), (WEIGHTS_SHARED, 8));
        let tight = Limits {
            shared_memory: 16 * 24 * 24 + 3 * 672,
            ..webgpu()
        };
        assert_eq!(plan(LSTM, 1000, 24, &tight).unwrap().sequences, 3);
    }

    #[test]
    fn small_layers_sum_their_parameter_gradients_in_one_launch() {
        // The reference model's first layer at a training batch of 64: 28 steps, so 10 sequences
        // (280 rows) per cube, 7 cubes; 40 rows of sums, 3 columns a unit (120 registers), so 14
        // units for its 40 gate columns.
        let call = Call::plan(kernels::LSTM, [64, 28, 10], &webgpu()).unwrap();
        let launch = call.parameter_launch(28, &webgpu()).unwrap();
        assert_eq!(
            launch,
            ParameterLaunch {
                chunk: 10,
                chunks: 7,
                units: 14,
                span: 3
            }
        );
        // A 784-step sequence is a cube's work on its own.
        let pixels = Call::plan(kernels::LSTM, [64, 784, 10], &webgpu()).unwrap();
        assert_eq!(pixels.parameter_launch(1, &webgpu()).unwrap().chunks, 64);
        // 64 rows of sums at most: (28 + 34 + 2) fits, one more hidden unit does not.
        let gru = Call::plan(kernels::GRU, [64, 28, 34], &webgpu()).unwrap();
        assert!(gru.parameter_launch(28, &webgpu()).is_some());
        let gru = Call::plan(kernels::GRU, [64, 28, 35], &webgpu()).unwrap();
        assert!(gru.parameter_launch(28, &webgpu()).is_none());
        // Nor more units than a cube's, nor more cubes than a launch's.
        let narrow = Limits {
            units: 8,
            ..webgpu()
        };
        assert!(call.parameter_launch(28, &narrow).is_none());
        let few = Limits {
            cubes: 6,
            ..webgpu()
        };
        assert!(call.parameter_launch(28, &few).is_none());
    }

    #[test]
    fn the_backward_keeps_two_buffers_of_gate_gradients_where_they_fit() {
        // The reference LSTM: 28 + 40 floats (7H, then 4H more) for each of 1 or 8 sequences.
        assert!(
            plan(kernels::LSTM, 64, 10, &webgpu())
                .unwrap()
                .double_buffered
        );
        assert!(
            plan(kernels::LSTM, 1000, 10, &webgpu())
                .unwrap()
                .double_buffered
        );
        // 11H floats fit 16 KiB up to H = 372; past it, one buffer and two barriers a step.
        assert!(
            plan(kernels::LSTM, 1, 372, &webgpu())
                .unwrap()
                .double_buffered
        );
        let wide = plan(kernels::LSTM, 1, 373, &webgpu()).unwrap();
        assert!(!wide.double_buffered);
        // Staged weights come first: at H = 24, 8 sequences of 11H floats fit beside them.
        let staged = plan(kernels::LSTM, 1000, 24, &webgpu()).unwrap();
        assert_eq!((staged.sequences, staged.double_buffered), (8, false));
        assert!(
            plan(kernels::LSTM, 64, 24, &webgpu())
                .unwrap()
                .double_buffered
        );
    }

    #[test]
    fn small_layers_exchange_their_carry_in_buffers_of_their_own() {
        // Two buffers of each unit's share of every hidden unit's carry (H·H floats) for the gated
        // cells, of the H gate gradients for the RNN.
        assert_eq!(own_step_bytes(kernels::LSTM, 16), 2048);
        assert_eq!(own_step_bytes(kernels::GRU, 21), 3528);
        assert_eq!(own_step_bytes(kernels::RNN, 64), 512);
        // They bound how many sequences share a cube: 8 KiB hold four LSTMs of 16 (units do eight).
        let tight = Limits {
            shared_memory: 8 * 1024,
            ..webgpu()
        };
        assert_eq!(plan(kernels::LSTM, 1000, 16, &tight).unwrap().sequences, 4);
        assert_eq!(
            plan(kernels::LSTM, 1000, 16, &webgpu()).unwrap().sequences,
            8
        );
        // Layers past the registers keep the step's three vectors and gate gradients.
        let staged = plan(kernels::LSTM, 1000, 24, &webgpu()).unwrap();
        assert_eq!(staged.sequences, 8);
    }

    #[test]
    fn small_layers_project_their_input_in_the_forward_kernel() {
        let call = plan(kernels::LSTM, 64, 10, &webgpu()).unwrap();
        // The reference model's layers: 28 and 10 inputs; 32 (128 weights) at most for an LSTM.
        assert!(call.projects(28) && call.projects(10) && call.projects(32));
        assert!(!call.projects(33));
        assert!(plan(kernels::RNN, 64, 64, &webgpu()).unwrap().projects(128));
        // Not where the recurrent weights leave registers.
        assert!(!plan(kernels::LSTM, 64, 24, &webgpu()).unwrap().projects(1));
    }

    #[test]
    fn a_batch_past_the_launch_limit_does_not_run() {
        let limits = Limits {
            cubes: 10,
            multiprocessors: Some(1),
            ..webgpu()
        };
        // Eight sequences per cube: 80 fit in ten cubes, 81 do not.
        assert_eq!(plan(kernels::LSTM, 81, 10, &limits), Err(Unfit::Batch));
        assert!(plan(kernels::LSTM, 80, 10, &limits).is_ok());
    }

    #[test]
    fn packed_and_residual_shapes_follow_the_cell() {
        let call = |cell| plan(cell, 2, 5, &webgpu()).unwrap();
        assert_eq!(call(kernels::LSTM).packed_shape(), [2, 5, 5]);
        assert_eq!(call(kernels::GRU).packed_shape(), [2, 4, 5]);
        assert_eq!(call(kernels::PEEPHOLE_LSTM).residual_width(), 30);
        assert_eq!(call(kernels::GRU).residual_width(), 20);
        assert_eq!(call(kernels::RNN).residual_width(), 0);
    }
}
