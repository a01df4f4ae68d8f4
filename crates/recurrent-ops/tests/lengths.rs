//! Batches of sequences of different lengths: both fused paths — `lengths::layer` (on NdArray and Flex
//! one kernel call that skips each row's steps past its length) and `lengths::segmented` (one kernel
//! call per segment, what wgpu runs) — against the masked step-by-step fallback, for every cell, with
//! and without initial state and biases: outputs and final states within 1e-6, every gradient within
//! 1e-5 relative, and the padding shown to change nothing: NaN or 1e30 past the lengths give the same
//! bits as zeros, and the input's gradient there is exactly zero. The kernel path gives the same bits
//! in thread pools of one and of three threads.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use recurrent_ops::lengths::{self, Plan};
use recurrent_ops::{
    Cell, LayerWeights, RecurrentAutodiffBackend, RecurrentState, Sequence, fallback, pack,
};

use crate::common::{Rng, max_abs_diff};

const OUTPUT_TOLERANCE: f32 = 1e-6;
const GRADIENT_TOLERANCE: f32 = 1e-5;

#[derive(Debug, Clone)]
struct Case {
    cell: Cell,
    batch: usize,
    time: usize,
    input: usize,
    hidden: usize,
    state: bool,
    bias: bool,
    lengths: Vec<usize>,
}

fn cases(cell: Cell, rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, (batch, time, input, hidden)) in [
        (1, 1, 1, 1),
        (3, 5, 2, 4),
        (7, 12, 3, 8),
        (16, 30, 13, 10),
        (5, 9, 1, 1),
    ]
    .into_iter()
    .enumerate()
    {
        // At least one sequence runs to the end of the padding, and one stops early where there is
        // room; the rest are drawn.
        let mut lengths: Vec<usize> = (0..batch).map(|_| 1 + rng.below(time)).collect();
        lengths[0] = time;
        if batch > 1 && time > 1 {
            lengths[batch - 1] = 1 + rng.below(time - 1);
        }
        cases.push(Case {
            cell,
            batch,
            time,
            input,
            hidden,
            state: i % 2 == 1,
            bias: i != 2,
            lengths,
        });
    }
    cases
}

fn tensor<B: Backend, const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Everything one case reads, as host values; `input` holds zeros past each length.
struct Values {
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Option<Vec<f32>>,
    bias_hh: Option<Vec<f32>>,
    peepholes: Option<[Vec<f32>; 3]>,
    hidden: Option<Vec<f32>>,
    cell: Option<Vec<f32>>,
    input: Vec<f32>,
    /// Weights of the packed output in the scalar whose gradients are compared.
    probe: Vec<f32>,
}

impl Values {
    fn new(case: &Case, rng: &mut Rng) -> Self {
        let (h, gh) = (case.hidden, case.cell.gates() * case.hidden);
        let bound = 1.0 / (h as f32).sqrt();
        let mut input = rng.values(case.batch * case.time * case.input, 1.0);
        for (b, &length) in case.lengths.iter().enumerate() {
            for t in length..case.time {
                input[(b * case.time + t) * case.input..][..case.input].fill(0.0);
            }
        }
        let extra = 1 + usize::from(case.cell.has_cell_state());
        Self {
            weight_ih: rng.values(case.input * gh, bound),
            weight_hh: rng.values(h * gh, bound),
            bias_ih: case.bias.then(|| rng.values(gh, bound)),
            bias_hh: case.bias.then(|| rng.values(gh, bound)),
            peepholes: (case.cell == Cell::PeepholeLstm)
                .then(|| [0, 1, 2].map(|_| rng.values(h, bound))),
            hidden: case.state.then(|| rng.values(case.batch * h, 1.0)),
            cell: (case.state && case.cell.has_cell_state())
                .then(|| rng.values(case.batch * h, 1.0)),
            input,
            probe: rng.values(case.batch * (case.time + extra) * h, 1.0),
        }
    }

    /// The input with `fill` past each length.
    fn padded_with(&self, case: &Case, fill: f32) -> Vec<f32> {
        let mut input = self.input.clone();
        for (b, &length) in case.lengths.iter().enumerate() {
            for t in length..case.time {
                input[(b * case.time + t) * case.input..][..case.input].fill(fill);
            }
        }
        input
    }
}

/// The tensors of a case on `B`, tracked when `B` is an autodiff backend and `track` is set.
struct Inputs<B: Backend> {
    weights: LayerWeights<B>,
    state: Option<RecurrentState<B>>,
    input: Tensor<B, 3>,
}

fn inputs<B: Backend>(case: &Case, v: &Values, input: Vec<f32>, track: bool) -> Inputs<B> {
    let (h, gh) = (case.hidden, case.cell.gates() * case.hidden);
    fn t<B: Backend, const D: usize>(v: &[f32], s: [usize; D], track: bool) -> Tensor<B, D> {
        let t = tensor::<B, D>(v.to_vec(), s);
        if track { t.require_grad() } else { t }
    }
    Inputs {
        weights: LayerWeights {
            cell: case.cell,
            weight_ih: t(&v.weight_ih, [case.input, gh], track),
            weight_hh: t(&v.weight_hh, [h, gh], track),
            bias_ih: v.bias_ih.as_ref().map(|b| t(b, [gh], track)),
            bias_hh: v.bias_hh.as_ref().map(|b| t(b, [gh], track)),
            peepholes: v
                .peepholes
                .as_ref()
                .map(|p| p.each_ref().map(|w| t(w, [h], track))),
        },
        state: v.hidden.as_ref().map(|hidden| RecurrentState {
            hidden: t(hidden, [case.batch, h], track),
            cell: v.cell.as_ref().map(|c| t(c, [case.batch, h], track)),
        }),
        input: t(&input, [case.batch, case.time, case.input], track),
    }
}

type Run<B> = fn(
    &LayerWeights<B>,
    Sequence<B>,
    Option<RecurrentState<B>>,
    &[usize],
) -> (Sequence<B>, RecurrentState<B>);

fn with_lengths<B: recurrent_ops::RecurrentBackend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: &[usize],
) -> (Sequence<B>, RecurrentState<B>) {
    lengths::layer(weights, input, state, Some(lengths))
}

/// The fused path under test.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// `lengths::layer`: the backend's own way (one kernel call on the CPU backends).
    Layer,
    /// `lengths::segmented`: one kernel call per segment.
    Segments,
}

impl Path {
    fn run<B: recurrent_ops::RecurrentBackend>(self) -> Run<B> {
        match self {
            Path::Layer => with_lengths::<B>,
            Path::Segments => lengths::segmented::<B>,
        }
    }
}

/// The packed output (sequence, final hidden, final cell) of one run, as host values.
fn forward<B: recurrent_ops::RecurrentBackend>(
    case: &Case,
    v: &Values,
    input: Vec<f32>,
    run: Run<B>,
) -> Vec<f32> {
    let x = inputs::<B>(case, v, input, false);
    let device = x.weights.device();
    let (sequence, state) = run(&x.weights, Sequence::Whole(x.input), x.state, &case.lengths);
    values(pack(sequence.into_whole(&device), state))
}

/// Every gradient of `sum(packed ⊙ probe)`, named.
fn gradients<B: RecurrentAutodiffBackend>(
    case: &Case,
    v: &Values,
    input: Vec<f32>,
    run: Run<B>,
) -> Vec<(&'static str, Vec<f32>)> {
    let x = inputs::<B>(case, v, input, true);
    let device = x.weights.device();
    let (sequence, state) = run(
        &x.weights,
        Sequence::Whole(x.input.clone()),
        x.state.clone(),
        &case.lengths,
    );
    let packed = pack(sequence.into_whole(&device), state);
    let probe = tensor::<B, 3>(v.probe.clone(), packed.dims());
    let grads = (packed * probe).sum().backward();
    // A tensor the run never read (weight_hh over one step from zeros) has no gradient: zeros.
    fn of<B: RecurrentAutodiffBackend, const D: usize>(
        name: &'static str,
        t: &Tensor<B, D>,
        grads: &<B as burn::tensor::backend::AutodiffBackend>::Gradients,
    ) -> (&'static str, Vec<f32>) {
        let g = t
            .grad(grads)
            .map(values)
            .unwrap_or_else(|| vec![0.0; t.shape().num_elements()]);
        (name, g)
    }
    let mut list = vec![
        of("input", &x.input, &grads),
        of("weight_ih", &x.weights.weight_ih, &grads),
        of("weight_hh", &x.weights.weight_hh, &grads),
    ];
    for (name, b) in [
        ("bias_ih", &x.weights.bias_ih),
        ("bias_hh", &x.weights.bias_hh),
    ] {
        list.extend(b.as_ref().map(|b| of(name, b, &grads)));
    }
    if let Some(p) = &x.weights.peepholes {
        for (name, w) in ["w_ci", "w_cf", "w_co"].into_iter().zip(p) {
            list.push(of(name, w, &grads));
        }
    }
    if let Some(s) = &x.state {
        list.push(of("h0", &s.hidden, &grads));
        if let Some(c) = &s.cell {
            list.push(of("c0", c, &grads));
        }
    }
    list
}

fn check_backend<B: RecurrentAutodiffBackend>(name: &str, path: Path)
where
    B::InnerBackend: recurrent_ops::RecurrentBackend,
{
    let segmented = path.run::<B::InnerBackend>();
    let segmented_ad = path.run::<B>();
    let mut rng = Rng(31);
    for cell in Cell::ALL {
        for case in cases(cell, &mut rng) {
            let v = Values::new(&case, &mut rng);
            let what = format!("{name} {path:?} {case:?}");
            let fused = forward::<B::InnerBackend>(&case, &v, v.input.clone(), segmented);
            let reference =
                forward::<B::InnerBackend>(&case, &v, v.input.clone(), fallback::masked_layer);
            let diff = max_abs_diff(&fused, &reference);
            assert!(
                diff <= OUTPUT_TOLERANCE,
                "{what}: outputs differ by {diff:e}"
            );

            // Garbage past the lengths gives the same bits, on both paths.
            for fill in [f32::NAN, 1e30] {
                let garbage = v.padded_with(&case, fill);
                let run = forward::<B::InnerBackend>(&case, &v, garbage.clone(), segmented);
                assert_eq!(
                    run, fused,
                    "{what}: {fill} past the lengths changed the output"
                );
                let run = forward::<B::InnerBackend>(&case, &v, garbage, fallback::masked_layer);
                assert_eq!(
                    run, reference,
                    "{what}: {fill} changed the fallback's output"
                );
            }

            let fused = gradients::<B>(&case, &v, v.padded_with(&case, f32::NAN), segmented_ad);
            let reference = gradients::<B>(
                &case,
                &v,
                v.padded_with(&case, 1e30),
                fallback::masked_layer,
            );
            for ((tensor, got), (_, want)) in fused.iter().zip(&reference) {
                let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let diff = max_abs_diff(got, want);
                assert!(
                    diff <= GRADIENT_TOLERANCE * scale.max(1e-6),
                    "{what}: gradient of {tensor} differs by {diff:e} (largest {scale:e})"
                );
                assert!(
                    got.iter().all(|g| g.is_finite()),
                    "{what}: {tensor} not finite"
                );
            }
            let input_grad = &fused[0].1;
            for (b, &length) in case.lengths.iter().enumerate() {
                let past = &input_grad
                    [(b * case.time + length) * case.input..(b + 1) * case.time * case.input];
                assert!(
                    past.iter().all(|&g| g == 0.0),
                    "{what}: input gradient past length {length} of row {b} is not zero"
                );
            }
        }
    }
}

#[test]
fn ndarray_kernels_with_lengths_match_the_masked_fallback() {
    check_backend::<Autodiff<NdArray>>("ndarray", Path::Layer);
}

#[test]
fn flex_kernels_with_lengths_match_the_masked_fallback() {
    check_backend::<Autodiff<Flex>>("flex", Path::Layer);
}

#[test]
fn ndarray_segments_match_the_masked_fallback() {
    check_backend::<Autodiff<NdArray>>("ndarray", Path::Segments);
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (Mesa's lavapipe in CI): run with --include-ignored"]
fn wgpu_segments_match_the_masked_fallback() {
    check_backend::<Autodiff<burn::backend::Wgpu>>("wgpu", Path::Layer);
}

#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs an NVIDIA GPU with its driver and NVRTC: run with --ignored"]
fn cuda_segments_match_the_masked_fallback() {
    check_backend::<Autodiff<burn::backend::Cuda>>("cuda", Path::Layer);
}

/// A case of `cell` with a state, biases and random lengths in `1..=time`.
fn random_lengths(cell: Cell, [batch, time, input, hidden]: [usize; 4], rng: &mut Rng) -> Case {
    Case {
        cell,
        batch,
        time,
        input,
        hidden,
        state: true,
        bias: true,
        lengths: (0..batch).map(|_| 1 + rng.below(time)).collect(),
    }
}

/// The kernel path's outputs and gradients on ndarray, NaN past each length.
fn kernel_run(case: &Case, v: &Values) -> (Vec<f32>, Vec<(&'static str, Vec<f32>)>) {
    let input = v.padded_with(case, f32::NAN);
    let outputs = forward::<NdArray>(case, v, input.clone(), with_lengths);
    let grads = gradients::<Autodiff<NdArray>>(case, v, input, with_lengths);
    (outputs, grads)
}

/// The kernel path's outputs and gradients do not depend on how many threads split the batch.
#[test]
fn kernels_with_lengths_give_the_same_bits_on_any_thread_count() {
    let mut rng = Rng(77);
    for cell in Cell::ALL {
        let case = random_lengths(cell, [37, 23, 6, 24], &mut rng);
        let v = Values::new(&case, &mut rng);
        let in_pool = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| kernel_run(&case, &v))
        };
        assert_eq!(in_pool(1), in_pool(3), "{cell}");
    }
}

/// Every code path the CPU has (AVX-512, AVX2 with FMA, portable) gives the same bits for every cell,
/// outputs and gradients, with lengths: a CPU of another class computes the same values.
#[test]
fn kernels_give_the_same_bits_on_every_instruction_set() {
    use recurrent_ops::cpu::{InstructionSet, set_instruction_set};
    let mut rng = Rng(78);
    for cell in Cell::ALL {
        let case = random_lengths(cell, [21, 19, 9, 20], &mut rng);
        let v = Values::new(&case, &mut rng);
        let on = |set: InstructionSet| {
            set_instruction_set(Some(set)).unwrap();
            let (outputs, grads) = kernel_run(&case, &v);
            set_instruction_set(None).unwrap();
            let bits = |values: &[f32]| values.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let grads: Vec<_> = grads.iter().map(|(name, g)| (*name, bits(g))).collect();
            (bits(&outputs), grads)
        };
        let sets = InstructionSet::available();
        let first = on(sets[0]);
        for &set in &sets[1..] {
            assert!(on(set) == first, "{cell}: {set} differs from {}", sets[0]);
        }
    }
}

/// Full lengths take the unsegmented path and give exactly what a call without lengths gives.
#[test]
fn full_lengths_are_the_plain_layer() {
    let mut rng = Rng(5);
    let case = Case {
        cell: Cell::Lstm,
        batch: 4,
        time: 6,
        input: 3,
        hidden: 5,
        state: false,
        bias: true,
        lengths: vec![6; 4],
    };
    let v = Values::new(&case, &mut rng);
    let with = forward::<NdArray>(&case, &v, v.input.clone(), with_lengths);
    let x = inputs::<NdArray>(&case, &v, v.input.clone(), false);
    let (sequence, state) = lengths::layer(&x.weights, Sequence::Whole(x.input), None, None);
    let without = values(pack(sequence.into_whole(&Default::default()), state));
    assert_eq!(with, without);
}

/// The work of a segmented batch is the sum of its lengths.
#[test]
fn segments_run_the_sum_of_the_lengths() {
    let lengths = [17, 6, 92, 40, 6, 23];
    let plan = Plan::new(&lengths);
    assert_eq!(plan.steps_run(), lengths.iter().sum::<usize>());
    assert!(plan.steps_run() < lengths.len() * 92);
}

/// `lengths::final_state` (on the CPU backends a kernel run that writes no step's output) gives the
/// bits of `lengths::layer`'s final state, for every cell, with full lengths, mixed lengths and none.
#[test]
fn the_final_state_alone_is_the_layers_final_state() {
    fn check<B: recurrent_ops::RecurrentBackend>(name: &str) {
        let mut rng = Rng(91);
        for cell in Cell::ALL {
            let mut case = random_lengths(cell, [13, 11, 5, 17], &mut rng);
            let v = Values::new(&case, &mut rng);
            let full = vec![case.time; case.batch];
            for lengths in [Some(case.lengths.clone()), Some(full), None] {
                case.lengths = lengths.clone().unwrap_or_default();
                let input = v.padded_with(&case, 0.0);
                let x = inputs::<B>(&case, &v, input, false);
                let whole = Sequence::Whole(x.input);
                let (_, want) = lengths::layer(
                    &x.weights,
                    whole.clone(),
                    x.state.clone(),
                    lengths.as_deref(),
                );
                let got = lengths::final_state(&x.weights, whole, x.state, lengths.as_deref());
                let bits = |s: RecurrentState<B>| {
                    let mut out: Vec<u32> = values(s.hidden).iter().map(|x| x.to_bits()).collect();
                    if let Some(c) = s.cell {
                        out.extend(values(c).iter().map(|x| x.to_bits()));
                    }
                    out
                };
                assert_eq!(bits(got), bits(want), "{name} {cell}, lengths {lengths:?}");
            }
        }
    }
    check::<NdArray>("ndarray");
    check::<Flex>("flex");
    check::<Autodiff<NdArray>>("autodiff ndarray");
}
