//! `Autodiff<B>`: one graph node per layer, with the inner backend's hand-written backward, when the
//! inner backend has native kernels; the fallback differentiated operation by operation otherwise.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorPrimitive};

use crate::backend::{fused_applies, unpack};
use crate::{
    Cell, FusedLayer, FusedOutput, LayerWeights, RecurrentBackend, RecurrentState, Sequence,
    fallback,
};

impl<B: RecurrentBackend, C: CheckpointStrategy> RecurrentBackend for Autodiff<B, C> {
    fn recurrent_layer(
        weights: &LayerWeights<Self>,
        input: Sequence<Self>,
        state: Option<RecurrentState<Self>>,
    ) -> (Sequence<Self>, RecurrentState<Self>) {
        if !fused_applies::<B, Self>(weights, &input) {
            return fallback::layer(weights, input, state);
        }
        let input = input.into_whole(&weights.device());
        let packed = fused_node::<B, C>(weights, input, state, None);
        let (sequence, state) = unpack(packed, weights.cell);
        (Sequence::Whole(sequence), state)
    }

    fn fused_runs(weights: &LayerWeights<Self>, input: &Sequence<Self>) -> bool {
        fused_applies::<B, Self>(weights, input)
    }

    fn fused_layer_lengths_available(cell: Cell, dtype: DType) -> bool {
        B::fused_layer_lengths_available(cell, dtype)
    }

    fn recurrent_layer_lengths(
        weights: &LayerWeights<Self>,
        input: Sequence<Self>,
        state: Option<RecurrentState<Self>>,
        lengths: &[usize],
    ) -> (Sequence<Self>, RecurrentState<Self>) {
        let dtype = weights.weight_hh.dtype();
        if !(fused_applies::<B, Self>(weights, &input)
            && B::fused_layer_lengths_available(weights.cell, dtype))
        {
            return fallback::masked_layer(weights, input, state, lengths);
        }
        let input = input.into_whole(&weights.device());
        let packed = fused_node::<B, C>(weights, input, state, Some(lengths));
        let (sequence, state) = unpack(packed, weights.cell);
        (Sequence::Whole(sequence), state)
    }
}

/// The inputs of the node, in the order of its parents.
const PARENTS: usize = 10;

/// The hand-written backward of one layer: the inner backend's `fused_layer_backward`.
#[derive(Debug)]
struct LayerBackward;

impl<B: RecurrentBackend> Backward<B, PARENTS> for LayerBackward {
    type State = (FusedLayer<B>, FusedOutput<B>);

    fn backward(
        self,
        ops: Ops<Self::State, PARENTS>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (layer, output) = ops.state;
        let grad = Tensor::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let [x, w_ih, w_hh, b_ih, b_hh, w_ci, w_cf, w_co, h0, c0] = ops.parents;
        let g = B::fused_layer_backward(&layer, &output, grad, x.is_some());
        macro_rules! register {
            ($parent:expr, $grad:expr) => {
                if let (Some(node), Some(grad)) = ($parent, $grad) {
                    grads.register::<B>(node.id, grad.into_primitive().tensor());
                }
            };
        }
        let [g_ci, g_cf, g_co] = match g.peepholes {
            Some([ci, cf, co]) => [Some(ci), Some(cf), Some(co)],
            None => [None, None, None],
        };
        register!(x, g.input);
        register!(w_ih, Some(g.weight_ih));
        register!(w_hh, Some(g.weight_hh));
        register!(b_ih, g.bias_ih);
        register!(b_hh, g.bias_hh);
        register!(w_ci, g_ci);
        register!(w_cf, g_cf);
        register!(w_co, g_co);
        register!(h0, g.hidden);
        register!(c0, g.cell);
    }
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> FloatTensor<B> {
    tensor.into_primitive().tensor()
}

/// The inner backend's tensor of an autodiff tensor.
fn inner<B: Backend, C: CheckpointStrategy, const D: usize>(
    tensor: &FloatTensor<Autodiff<B, C>>,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(tensor.primitive.clone()))
}

/// Records the layer as one node whose parents are all its inputs (absent ones stand in as untracked
/// placeholders, which get no gradient); returns the packed output.
fn fused_node<B: RecurrentBackend, C: CheckpointStrategy>(
    weights: &LayerWeights<Autodiff<B, C>>,
    input: Tensor<Autodiff<B, C>, 3>,
    state: Option<RecurrentState<Autodiff<B, C>>>,
    lengths: Option<&[usize]>,
) -> Tensor<Autodiff<B, C>, 3> {
    let absent = primitive(Tensor::<Autodiff<B, C>, 1>::empty([1], &weights.device()));
    let x = primitive(input);
    let w_ih = primitive(weights.weight_ih.clone());
    let w_hh = primitive(weights.weight_hh.clone());
    let b_ih = weights.bias_ih.clone().map(primitive);
    let b_hh = weights.bias_hh.clone().map(primitive);
    let peepholes = weights.peepholes.clone().map(|p| p.map(primitive));
    let h0 = state.as_ref().map(|s| primitive(s.hidden.clone()));
    let c0 = state.as_ref().and_then(|s| s.cell.clone()).map(primitive);

    let layer = FusedLayer::<B> {
        weights: LayerWeights {
            cell: weights.cell,
            weight_ih: inner::<B, C, 2>(&w_ih),
            weight_hh: inner::<B, C, 2>(&w_hh),
            bias_ih: b_ih.as_ref().map(inner::<B, C, 1>),
            bias_hh: b_hh.as_ref().map(inner::<B, C, 1>),
            peepholes: peepholes
                .as_ref()
                .map(|p| p.each_ref().map(inner::<B, C, 1>)),
        },
        input: inner::<B, C, 3>(&x),
        state: h0.as_ref().map(|h| RecurrentState {
            hidden: inner::<B, C, 2>(h),
            cell: c0.as_ref().map(inner::<B, C, 2>),
        }),
        lengths: lengths.map(<[usize]>::to_vec),
    };

    let node_of = |t: Option<&FloatTensor<Autodiff<B, C>>>| t.unwrap_or(&absent).node.clone();
    let peephole = |k: usize| node_of(peepholes.as_ref().map(|p| &p[k]));
    let nodes = [
        x.node.clone(),
        w_ih.node.clone(),
        w_hh.node.clone(),
        node_of(b_ih.as_ref()),
        node_of(b_hh.as_ref()),
        peephole(0),
        peephole(1),
        peephole(2),
        node_of(h0.as_ref()),
        node_of(c0.as_ref()),
    ];
    let output = match <LayerBackward as Backward<B, PARENTS>>::prepare::<C>(LayerBackward, nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output = B::fused_layer_forward(&layer, true);
            let packed = primitive(output.packed.clone());
            prep.finish((layer, output), packed)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(primitive(B::fused_layer_forward(&layer, false).packed))
        }
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}
