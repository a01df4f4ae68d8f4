//! `set_fused_kernels(false)` sends every layer through the step-by-step fallback, and `true` back
//! through the fused kernels. In a test binary of its own: the switch is process-wide.

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use recurrent_ops::{
    Cell, LayerWeights, RecurrentBackend, Sequence, fallback, fused_kernels_enabled,
    set_fused_kernels,
};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn tensor<const D: usize>(n: usize, seed: u32, shape: [usize; D]) -> Tensor<NdArray, D> {
    Tensor::from_data(TensorData::new(values(n, seed), shape), &Default::default())
}

/// The final hidden state of one GRU layer over 40 steps, bit for bit.
fn run(
    layer: impl Fn(&LayerWeights<NdArray>, Sequence<NdArray>) -> Tensor<NdArray, 2>,
) -> Vec<u32> {
    let (batch, time, input, hidden) = (3, 40, 2, 8);
    let weights = LayerWeights {
        cell: Cell::Gru,
        weight_ih: tensor(input * 3 * hidden, 1, [input, 3 * hidden]).mul_scalar(0.5),
        weight_hh: tensor(hidden * 3 * hidden, 2, [hidden, 3 * hidden]).mul_scalar(0.5),
        bias_ih: Some(tensor(3 * hidden, 3, [3 * hidden])),
        bias_hh: Some(tensor(3 * hidden, 4, [3 * hidden])),
        peepholes: None,
    };
    let input = Sequence::Whole(tensor(batch * time * input, 5, [batch, time, input]));
    layer(&weights, input)
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

#[test]
fn the_switch_chooses_between_the_fused_kernels_and_the_fallback() {
    let through_backend =
        |w: &LayerWeights<NdArray>, x| NdArray::recurrent_layer(w, x, None).1.hidden;
    let through_fallback = |w: &LayerWeights<NdArray>, x| fallback::layer(w, x, None).1.hidden;
    assert!(fused_kernels_enabled(), "on by default");
    let fused = run(through_backend);
    let step_by_step = run(through_fallback);
    assert_ne!(
        fused, step_by_step,
        "the fused kernel rounds differently from the fallback"
    );

    set_fused_kernels(false);
    assert!(!fused_kernels_enabled());
    assert_eq!(run(through_backend), step_by_step);

    set_fused_kernels(true);
    assert_eq!(run(through_backend), fused);
}
