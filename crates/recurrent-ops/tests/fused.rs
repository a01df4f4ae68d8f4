//! The fused CPU kernels against the tensor-op fallback: outputs and final states within 1e-6, every
//! gradient within 1e-5 relative (the largest difference over the largest magnitude of each tensor), on
//! shapes drawn for each cell from hidden 1/10/64, input 1/28, 1/28/784 steps, batch 1/3/64, with and
//! without initial state and biases — one layer at the operation level, and stacks of 1–3 layers
//! through `Autodiff`, where the fused path is one graph node per layer.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use recurrent_ops::{
    Cell, FusedLayer, LayerGrads, LayerWeights, RecurrentAutodiffBackend, RecurrentBackend,
    RecurrentState, Sequence, fallback, packed_extra_rows,
};

use crate::common::{Rng, max_abs_diff};

const OUTPUT_TOLERANCE: f32 = 1e-6;
const GRADIENT_TOLERANCE: f32 = 1e-5;

#[derive(Debug, Clone, Copy)]
struct Case {
    cell: Cell,
    layers: usize,
    hidden: usize,
    input: usize,
    time: usize,
    batch: usize,
    state: bool,
    bias: bool,
}

impl Case {
    /// Work of the case, to keep the slow fallback's share of the test time in bounds.
    fn cost(&self) -> usize {
        self.layers * self.batch * self.time * self.hidden * (self.hidden + self.input + 1)
    }
}

/// Cases for one cell: every listed value of every dimension appears, the rest is drawn.
fn cases(cell: Cell, rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let times = [1, 28, 784];
    let hiddens = [1, 10, 64];
    let batches = [1, 3, 64];
    for i in 0..9 {
        let mut case = Case {
            cell,
            layers: 1 + i % 3,
            hidden: hiddens[i % 3],
            input: [1, 28][i % 2],
            time: times[(i / 3) % 3],
            batch: batches[(i + i / 3) % 3],
            state: rng.next().is_multiple_of(2),
            bias: i % 4 != 3,
        };
        while case.cost() > 20_000_000 {
            case.batch = rng.pick(&[1, 3]);
            if case.cost() > 20_000_000 {
                case.layers = 1;
            }
        }
        cases.push(case);
    }
    cases
}

fn tensor<B: Backend, const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

/// The values of one layer of a case: weights as PyTorch draws them, inputs and states in [-1, 1].
struct LayerValues {
    input_size: usize,
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Option<Vec<f32>>,
    bias_hh: Option<Vec<f32>>,
    peepholes: Option<[Vec<f32>; 3]>,
    hidden: Option<Vec<f32>>,
    cell: Option<Vec<f32>>,
}

fn layer_values(case: &Case, input_size: usize, rng: &mut Rng) -> LayerValues {
    let (h, gh) = (case.hidden, case.cell.gates() * case.hidden);
    let bound = 1.0 / (h as f32).sqrt();
    let n = case.batch * h;
    LayerValues {
        input_size,
        weight_ih: rng.values(input_size * gh, bound),
        weight_hh: rng.values(h * gh, bound),
        bias_ih: case.bias.then(|| rng.values(gh, bound)),
        bias_hh: case.bias.then(|| rng.values(gh, bound)),
        peepholes: (case.cell == Cell::PeepholeLstm).then(|| {
            [
                rng.values(h, bound),
                rng.values(h, bound),
                rng.values(h, bound),
            ]
        }),
        hidden: case.state.then(|| rng.values(n, 1.0)),
        cell: (case.state && case.cell.has_cell_state()).then(|| rng.values(n, 1.0)),
    }
}

impl LayerValues {
    fn weights<B: Backend>(&self, case: &Case, track: bool) -> LayerWeights<B> {
        let (h, gh) = (case.hidden, case.cell.gates() * case.hidden);
        let t2 = |v: &Vec<f32>, shape| tracked(tensor::<B, 2>(v.clone(), shape), track);
        let t1 = |v: &Vec<f32>, n| tracked(tensor::<B, 1>(v.clone(), [n]), track);
        LayerWeights {
            cell: case.cell,
            weight_ih: t2(&self.weight_ih, [self.input_size, gh]),
            weight_hh: t2(&self.weight_hh, [h, gh]),
            bias_ih: self.bias_ih.as_ref().map(|v| t1(v, gh)),
            bias_hh: self.bias_hh.as_ref().map(|v| t1(v, gh)),
            peepholes: self
                .peepholes
                .as_ref()
                .map(|p| p.each_ref().map(|v| t1(v, h))),
        }
    }

    fn state<B: Backend>(&self, case: &Case, track: bool) -> Option<RecurrentState<B>> {
        let shape = [case.batch, case.hidden];
        self.hidden.as_ref().map(|h| RecurrentState {
            hidden: tracked(tensor(h.clone(), shape), track),
            cell: self
                .cell
                .as_ref()
                .map(|c| tracked(tensor(c.clone(), shape), track)),
        })
    }
}

fn tracked<B: Backend, const D: usize>(t: Tensor<B, D>, track: bool) -> Tensor<B, D> {
    if track { t.require_grad() } else { t }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// The outputs' tolerance for layers of `terms` products per sum (hidden + input size): 1e-6 up to
/// 1 024, then growing with them, as the rounding of two summation orders does.
fn output_tolerance(terms: usize) -> f32 {
    OUTPUT_TOLERANCE * (terms as f32 / 1024.0).max(1.0)
}

fn assert_outputs_close(what: &str, fused: &[f32], reference: &[f32]) {
    assert_outputs_within(what, fused, reference, OUTPUT_TOLERANCE);
}

fn assert_outputs_within(what: &str, fused: &[f32], reference: &[f32], tolerance: f32) {
    let diff = max_abs_diff(fused, reference);
    assert!(diff <= tolerance, "{what}: outputs differ by {diff:e}");
}

fn assert_gradient_close(what: &str, fused: &[f32], reference: &[f32]) {
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(fused, reference);
    assert!(
        diff <= GRADIENT_TOLERANCE * scale.max(1e-6),
        "{what}: gradients differ by {diff:e} (largest magnitude {scale:e})"
    );
}

/// Every gradient of a layer, named, as host values.
fn grad_list<B: Backend>(g: LayerGrads<B>) -> Vec<(&'static str, Vec<f32>)> {
    let mut list = vec![
        ("weight_ih", values(g.weight_ih)),
        ("weight_hh", values(g.weight_hh)),
    ];
    list.extend(g.input.map(|t| ("input", values(t))));
    list.extend(g.bias_ih.map(|t| ("bias_ih", values(t))));
    list.extend(g.bias_hh.map(|t| ("bias_hh", values(t))));
    if let Some([ci, cf, co]) = g.peepholes {
        list.extend([
            ("w_ci", values(ci)),
            ("w_cf", values(cf)),
            ("w_co", values(co)),
        ]);
    }
    list.extend(g.hidden.map(|t| ("initial hidden", values(t))));
    list.extend(g.cell.map(|t| ("initial cell", values(t))));
    list
}

/// One layer at the operation level: `fused_layer_forward`/`_backward` of `B` against the fallback
/// on `R` (the same backend, or the CPU for a GPU backend, whose fallback runs much faster there).
fn compare_operation<B: RecurrentBackend, R: Backend>(case: &Case, rng: &mut Rng) {
    let v = layer_values(case, case.input, rng);
    let input = rng.values(case.batch * case.time * case.input, 1.0);
    let shape = [case.batch, case.time, case.input];
    let layer = FusedLayer {
        weights: v.weights::<B>(case, false),
        input: tensor::<B, 3>(input.clone(), shape),
        state: v.state::<B>(case, false),
        lengths: None,
    };
    let reference_layer = FusedLayer {
        weights: v.weights::<R>(case, false),
        input: tensor::<R, 3>(input, shape),
        state: v.state::<R>(case, false),
        lengths: None,
    };
    let what = format!("{case:?}");
    let fused = B::fused_layer_forward(&layer, true);
    let reference = fallback::forward(&reference_layer);
    assert_outputs_within(
        &what,
        &values(fused.packed.clone()),
        &values(reference.packed),
        output_tolerance(case.hidden + case.input),
    );

    let rows = case.time + packed_extra_rows(case.cell);
    let grad = rng.values(case.batch * rows * case.hidden, 1.0);
    let shape = [case.batch, rows, case.hidden];
    let got = grad_list(B::fused_layer_backward(
        &layer,
        &fused,
        tensor::<B, 3>(grad.clone(), shape),
        true,
    ));
    let want = grad_list(fallback::backward(
        &reference_layer,
        tensor::<R, 3>(grad, shape),
    ));
    let want_names: Vec<_> = want.iter().map(|(n, _)| *n).collect();
    let got_names: Vec<_> = got.iter().map(|(n, _)| *n).collect();
    assert_eq!(got_names, want_names, "{what}: the same gradients");
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert_gradient_close(&format!("{what} {name}"), g, w);
    }
}

#[test]
fn ndarray_kernels_match_the_fallback_operation() {
    let mut rng = Rng(13);
    for cell in Cell::ALL {
        for case in cases(cell, &mut rng) {
            compare_operation::<NdArray, NdArray>(&case, &mut rng);
        }
    }
}

#[test]
fn flex_kernels_match_the_fallback_operation() {
    let mut rng = Rng(14);
    for cell in Cell::ALL {
        for case in cases(cell, &mut rng).into_iter().step_by(2) {
            compare_operation::<Flex, Flex>(&case, &mut rng);
        }
    }
}

/// Outputs and gradients of a stack run through `Autodiff<B>`: every layer's final state, the last
/// layer's sequence, and the gradients of every input, weight and initial state.
fn stack<B: RecurrentAutodiffBackend>(
    case: &Case,
    layers: &[LayerValues],
    input: &[f32],
    seeds: &[Vec<f32>],
    fused: bool,
) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
    let x = tensor::<B, 3>(input.to_vec(), [case.batch, case.time, case.input]).require_grad();
    let weights: Vec<LayerWeights<B>> = layers.iter().map(|l| l.weights(case, true)).collect();
    let states: Vec<Option<RecurrentState<B>>> =
        layers.iter().map(|l| l.state(case, true)).collect();
    let mut sequence = Sequence::Whole(x.clone());
    let mut finals = Vec::new();
    for (w, s) in weights.iter().zip(&states) {
        let (out, state) = if fused {
            B::recurrent_layer(w, sequence, s.clone())
        } else {
            fallback::layer(w, sequence, s.clone())
        };
        sequence = out;
        finals.push(state);
    }
    let device = Default::default();
    let last = sequence.into_whole(&device);
    let mut seeds = seeds.iter();
    let mut weigh = |t: Tensor<B, 3>| {
        let dims = t.dims();
        (t * tensor::<B, 3>(seeds.next().unwrap().clone(), dims)).sum()
    };
    let mut outputs = values(last.clone());
    let mut loss = weigh(last);
    for s in &finals {
        outputs.extend(values(s.hidden.clone()));
        loss = loss + weigh(s.hidden.clone().unsqueeze_dim(1));
        if let Some(c) = &s.cell {
            outputs.extend(values(c.clone()));
            loss = loss + weigh(c.clone().unsqueeze_dim(1));
        }
    }
    let grads = loss.backward();
    let mut list = vec![("input".to_string(), values(x.grad(&grads).unwrap()))];
    for (k, (w, s)) in weights.iter().zip(&states).enumerate() {
        // A tensor the computation never reads (a peephole weight on a single step from zeros) has
        // no gradient in the fallback's graph; its gradient is zero.
        let mut add = |name: &str, param: Tensor<B, 2>| {
            let grad = param
                .grad(&grads)
                .unwrap_or_else(|| param.clone().inner().zeros_like());
            list.push((format!("layer {k} {name}"), values(grad)));
        };
        add("weight_ih", w.weight_ih.clone());
        add("weight_hh", w.weight_hh.clone());
        for (name, b) in [("bias_ih", &w.bias_ih), ("bias_hh", &w.bias_hh)] {
            if let Some(b) = b {
                add(name, b.clone().unsqueeze());
            }
        }
        for (name, p) in ["w_ci", "w_cf", "w_co"]
            .iter()
            .zip(w.peepholes.iter().flatten())
        {
            add(name, p.clone().unsqueeze());
        }
        if let Some(s) = s {
            add("initial hidden", s.hidden.clone());
            if let Some(c) = &s.cell {
                add("initial cell", c.clone());
            }
        }
    }
    (outputs, list)
}

/// A stack through `Autodiff<B>`'s fused path against the same stack through the fallback on `R`.
fn compare_stack<B: RecurrentAutodiffBackend, R: RecurrentAutodiffBackend>(
    case: &Case,
    rng: &mut Rng,
) {
    let layers: Vec<LayerValues> = (0..case.layers)
        .map(|k| layer_values(case, if k == 0 { case.input } else { case.hidden }, rng))
        .collect();
    let input = rng.values(case.batch * case.time * case.input, 1.0);
    let per_state = case.batch * case.hidden;
    let mut seeds = vec![rng.values(case.batch * case.time * case.hidden, 1.0)];
    for _ in 0..case.layers * 2 {
        seeds.push(rng.values(per_state, 1.0));
    }
    let what = format!("{case:?}");
    let (out_fused, grads_fused) = stack::<B>(case, &layers, &input, &seeds, true);
    let (out_ref, grads_ref) = stack::<R>(case, &layers, &input, &seeds, false);
    assert_outputs_close(&what, &out_fused, &out_ref);
    assert_eq!(grads_fused.len(), grads_ref.len());
    for ((name, g), (_, w)) in grads_fused.iter().zip(&grads_ref) {
        assert_gradient_close(&format!("{what} {name}"), g, w);
    }
}

#[test]
fn fused_stacks_match_the_fallback_through_autodiff() {
    let mut rng = Rng(15);
    for cell in Cell::ALL {
        for case in cases(cell, &mut rng).into_iter().skip(1).step_by(2) {
            compare_stack::<Autodiff<NdArray>, Autodiff<NdArray>>(&case, &mut rng);
        }
    }
}

#[test]
fn flex_stacks_match_the_fallback_through_autodiff() {
    let mut rng = Rng(16);
    for cell in Cell::ALL {
        let case = cases(cell, &mut rng)[4];
        compare_stack::<Autodiff<Flex>, Autodiff<Flex>>(&case, &mut rng);
    }
}

/// A GPU backend's CubeCL kernels (wgpu: on a GPU, or Mesa's software Vulkan driver in CI; CUDA: on an
/// NVIDIA GPU) against the fallback on the CPU: every third case of each cell, wide layers, layers past
/// WebGPU's 16 KiB of workgroup memory and past the device's own limit, and one stack per cell.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
macro_rules! gpu_kernel_tests {
    ($module:ident, $backend:ty, $runtime:ty, $why:literal) => {
        mod $module {
            use super::*;
            use cubecl::Runtime;

            type Gpu = $backend;

            #[test]
            #[ignore = $why]
            fn kernels_match_the_fallback_operation() {
                let mut rng = Rng(17);
                for cell in Cell::ALL {
                    for case in cases(cell, &mut rng).into_iter().step_by(3) {
                        compare_operation::<Gpu, NdArray>(&case, &mut rng);
                    }
                }
            }

            /// Batches that do not fill the last cube (the kernels run several small sequences per
            /// cube) and a batch of one, with the recurrent weights in each unit's registers (hidden
            /// 6) and staged in workgroup memory (hidden 24, on any device with 16 KiB of it).
            #[test]
            #[ignore = $why]
            fn kernels_run_any_batch_size() {
                let mut rng = Rng(20);
                for cell in Cell::ALL {
                    for (batch, hidden) in [(1, 6), (67, 6), (301, 6), (1, 24), (67, 24), (301, 24)]
                    {
                        let case = Case {
                            cell,
                            layers: 1,
                            hidden,
                            input: 3,
                            time: 4,
                            batch,
                            state: true,
                            bias: true,
                        };
                        compare_operation::<Gpu, NdArray>(&case, &mut rng);
                    }
                }
            }

            /// The largest layers whose units each own a hidden unit (`G·H` up to 64 recurrent
            /// weights in registers: an LSTM of 16, a GRU of 21, an RNN of 64), whose backward
            /// exchanges partial sums of the carry (the RNN its gate gradients), with inputs the
            /// kernels read 4 (28, 12) and 2 (6, 2) features at a time.
            #[test]
            #[ignore = $why]
            fn small_layers_match_at_the_register_limit() {
                let mut rng = Rng(21);
                for (cell, hidden, input) in [
                    (Cell::Lstm, 16, 28),
                    (Cell::PeepholeLstm, 16, 6),
                    (Cell::Gru, 21, 12),
                    (Cell::Rnn, 64, 2),
                ] {
                    let case = Case {
                        cell,
                        layers: 2,
                        hidden,
                        input,
                        time: 7,
                        batch: 5,
                        state: true,
                        bias: true,
                    };
                    compare_operation::<Gpu, NdArray>(&case, &mut rng);
                    compare_stack::<Autodiff<Gpu>, Autodiff<NdArray>>(&case, &mut rng);
                }
            }

            /// Hidden sizes whose gate columns outnumber a cube's units (each unit then strides over
            /// several), past WebGPU's minimum of 16 KiB of workgroup memory (the kernels' old limit),
            /// and past the device's own limit, which runs the fallback.
            #[test]
            #[ignore = $why]
            fn kernels_stride_over_wide_layers_and_fall_back_beyond_the_device() {
                let device = Default::default();
                let offered = <$runtime>::client(&device)
                    .properties()
                    .hardware
                    .max_shared_memory_size;
                let mut rng = Rng(19);
                for cell in Cell::ALL {
                    let per_unit = (3 + cell.gates()) * size_of::<f32>();
                    let past_webgpu = 16 * 1024 / per_unit + 1;
                    let past_device = offered / per_unit + 1;
                    for (hidden, time) in [(300, 5), (past_webgpu, 3), (past_device, 2)] {
                        let case = Case {
                            cell,
                            layers: 1,
                            hidden,
                            input: 3,
                            time,
                            batch: 2,
                            state: true,
                            bias: true,
                        };
                        compare_operation::<Gpu, NdArray>(&case, &mut rng);
                    }
                }
            }

            #[test]
            #[ignore = $why]
            fn stacks_match_the_fallback_through_autodiff() {
                let mut rng = Rng(18);
                for cell in Cell::ALL {
                    let case = cases(cell, &mut rng)[4];
                    compare_stack::<Autodiff<Gpu>, Autodiff<NdArray>>(&case, &mut rng);
                }
            }
        }
    };
}

#[cfg(feature = "wgpu")]
gpu_kernel_tests!(
    wgpu,
    burn::backend::Wgpu,
    cubecl::wgpu::WgpuRuntime,
    "needs a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1); CI runs it with --include-ignored"
);

#[cfg(feature = "cuda")]
gpu_kernel_tests!(
    cuda,
    burn::backend::Cuda,
    cubecl::cuda::CudaRuntime,
    "needs an NVIDIA GPU with its driver and NVRTC: cargo test -p recurrent-ops --features cuda -- --ignored"
);
