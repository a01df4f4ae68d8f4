//! Finite-difference gradient checks: autodiff through our hand-written cells agrees with central
//! differences of the loss, in double precision. The peephole LSTM is the cell PyTorch lacks, so its
//! gradients are checked here parameter by parameter, peephole weights included.

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Param};
use burn::tensor::backend::set_default_float_dtype;
use burn::tensor::{Distribution, FloatDType, Int, Tensor, TensorData};
use model::{Cell, ModelConfig, RecurrentClassifier, cross_entropy};

// Flex computes every op in f64 when asked to; NdArray works in f32, which would drown the finite
// differences in noise.
type Inner = Flex;
type B = Autodiff<Inner>;

const EPS: f64 = 1e-6;

/// Makes f64 the default float type of the test device, once per process, before any tensor exists.
fn double_precision() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let device = Default::default();
        set_default_float_dtype::<Inner>(&device, FloatDType::F64).unwrap();
    });
}

/// The loss of `model` on a fixed batch, in f64.
fn loss<Bk: burn::tensor::backend::Backend>(
    model: &RecurrentClassifier<Bk>,
    input: &Tensor<Bk, 3>,
    targets: &Tensor<Bk, 1, Int>,
) -> f64 {
    // Through TensorData: `into_scalar` would round to the backend's default element, f32.
    let values: Vec<f64> = cross_entropy(model.forward(input.clone()), targets.clone())
        .into_data()
        .to_vec()
        .unwrap();
    values[0]
}

/// Which tensor of a layer to perturb.
#[derive(Clone, Copy, Debug)]
enum Which {
    Ih,
    Hh,
    Ci,
    Cf,
    Co,
}

fn param_values(model: &RecurrentClassifier<Inner>, layer: usize, which: Which) -> Vec<f64> {
    let l = &model.rnn.layers[layer];
    let data = match which {
        Which::Ih => l.weight_ih.val().into_data(),
        Which::Hh => l.weight_hh.val().into_data(),
        Which::Ci => l.weight_ci.as_ref().unwrap().val().into_data(),
        Which::Cf => l.weight_cf.as_ref().unwrap().val().into_data(),
        Which::Co => l.weight_co.as_ref().unwrap().val().into_data(),
    };
    data.to_vec().unwrap()
}

/// `model` with element `index` of the chosen tensor moved by `delta`.
fn perturbed(
    model: &RecurrentClassifier<Inner>,
    layer: usize,
    which: Which,
    index: usize,
    delta: f64,
) -> RecurrentClassifier<Inner> {
    let mut model = model.clone();
    let device = Default::default();
    let l = &mut model.rnn.layers[layer];
    let shift2 = |t: Tensor<Inner, 2>| {
        let dims = t.dims();
        let mut v: Vec<f64> = t.into_data().to_vec().unwrap();
        v[index] += delta;
        Param::from_tensor(Tensor::from_data(TensorData::new(v, dims), &device))
    };
    let shift1 = |t: Tensor<Inner, 1>| {
        let dims = t.dims();
        let mut v: Vec<f64> = t.into_data().to_vec().unwrap();
        v[index] += delta;
        Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(v, dims),
            &device,
        )))
    };
    match which {
        Which::Ih => l.weight_ih = shift2(l.weight_ih.val()),
        Which::Hh => l.weight_hh = shift2(l.weight_hh.val()),
        Which::Ci => l.weight_ci = shift1(l.weight_ci.as_ref().unwrap().val()),
        Which::Cf => l.weight_cf = shift1(l.weight_cf.as_ref().unwrap().val()),
        Which::Co => l.weight_co = shift1(l.weight_co.as_ref().unwrap().val()),
    }
    model
}

fn analytic(
    model: &RecurrentClassifier<B>,
    grads: &<B as burn::tensor::backend::AutodiffBackend>::Gradients,
    layer: usize,
    which: Which,
) -> Vec<f64> {
    let l = &model.rnn.layers[layer];
    let data = match which {
        Which::Ih => l.weight_ih.val().grad(grads).unwrap().into_data(),
        Which::Hh => l.weight_hh.val().grad(grads).unwrap().into_data(),
        Which::Ci => l
            .weight_ci
            .as_ref()
            .unwrap()
            .val()
            .grad(grads)
            .unwrap()
            .into_data(),
        Which::Cf => l
            .weight_cf
            .as_ref()
            .unwrap()
            .val()
            .grad(grads)
            .unwrap()
            .into_data(),
        Which::Co => l
            .weight_co
            .as_ref()
            .unwrap()
            .val()
            .grad(grads)
            .unwrap()
            .into_data(),
    };
    data.to_vec().unwrap()
}

fn check_cell(cell: Cell, tensors: &[Which]) {
    double_precision();
    let device = Default::default();
    let model = ModelConfig::new(3, 4, 2, 3)
        .with_cell(cell)
        .init::<B>(&device)
        .unwrap();
    let input = Tensor::<B, 3>::random([2, 5, 3], Distribution::Normal(0.0, 1.0), &device);
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
    let grads = cross_entropy(model.forward(input.clone()), targets.clone()).backward();

    let inner = model.valid();
    let (input_inner, targets_inner) = (input.inner(), targets.inner());
    let mut checked = 0;
    for layer in 0..2 {
        for &which in tensors {
            let auto = analytic(&model, &grads, layer, which);
            let count = param_values(&inner, layer, which).len();
            assert_eq!(auto.len(), count);
            // Every element of the peephole vectors; a spread of the matrices' elements.
            let step = if count > 16 { 3 } else { 1 };
            for index in (0..count).step_by(step) {
                let plus = loss(
                    &perturbed(&inner, layer, which, index, EPS),
                    &input_inner,
                    &targets_inner,
                );
                let minus = loss(
                    &perturbed(&inner, layer, which, index, -EPS),
                    &input_inner,
                    &targets_inner,
                );
                let numeric = (plus - minus) / (2.0 * EPS);
                let error = (auto[index] - numeric).abs();
                assert!(
                    error <= 1e-7 + 1e-5 * numeric.abs(),
                    "{cell} layer {layer} {which:?}[{index}]: autodiff {} vs finite difference {numeric}",
                    auto[index]
                );
                checked += 1;
            }
            assert!(
                auto.iter().any(|g| g.abs() > 1e-6),
                "{cell} layer {layer} {which:?}: all gradients vanish, the check would prove nothing"
            );
        }
    }
    assert!(checked > 30, "only {checked} elements checked");
}

#[test]
fn peephole_gradients_match_finite_differences() {
    check_cell(
        Cell::PeepholeLstm,
        &[Which::Ci, Which::Cf, Which::Co, Which::Ih, Which::Hh],
    );
}

#[test]
fn other_cells_gradients_match_finite_differences() {
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        check_cell(cell, &[Which::Ih, Which::Hh]);
    }
}
