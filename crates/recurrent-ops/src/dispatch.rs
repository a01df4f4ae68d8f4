//! The kernels of whichever backend a layer runs on, for code generic over any `B: Backend`.
//!
//! [`RecurrentBackend`](crate::RecurrentBackend) is implemented here for the backends that have kernels (NdArray, Flex, the fused
//! CubeCL backends, and `Autodiff` of each). Nobody else may implement it for Burn's backend types (the
//! orphan rule), so the model is not bounded by it: each layer call compares `B` with the backends that
//! have kernels, by `TypeId`, and runs their `RecurrentBackend` path when it is one of them, the
//! step-by-step [`fallback`] otherwise (LibTorch, candle, a CubeCL backend without fusion, NdArray of
//! f64, a backend of one's own). The comparison costs a few integer compares per layer call.

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::Backend;

use crate::{LayerWeights, RecurrentState, Sequence, fallback, lengths};

/// Calls `$then!` with the list of backends that implement `RecurrentBackend` in this build: the one
/// list the dispatch reads.
macro_rules! kernel_backends {
    ($then:ident $(, $arg:tt)*) => {
        $then!(
            $($arg,)*
            NdArray,
            Autodiff<NdArray, NoCheckpointing>,
            Autodiff<NdArray, BalancedCheckpointing>,
            Flex,
            Autodiff<Flex, NoCheckpointing>,
            Autodiff<Flex, BalancedCheckpointing>
        );
        #[cfg(feature = "wgpu")]
        $then!(
            $($arg,)*
            burn::backend::Wgpu,
            Autodiff<burn::backend::Wgpu, NoCheckpointing>,
            Autodiff<burn::backend::Wgpu, BalancedCheckpointing>
        );
        #[cfg(feature = "cuda")]
        $then!(
            $($arg,)*
            burn::backend::Cuda,
            Autodiff<burn::backend::Cuda, NoCheckpointing>,
            Autodiff<burn::backend::Cuda, BalancedCheckpointing>
        );
    };
}

/// Returns, from the function it expands in, `lengths::$kernel::<K>` run on the call's arguments when
/// the backend `$B` is `K`, one of the listed backends.
macro_rules! run_on {
    ($B:ty, $kernel:ident, ($weights:expr, $input:expr, $state:expr, $lengths:expr), $($K:ty),* $(,)?) => {
        $(
            if same::<$B, $K>() {
                return cast(lengths::$kernel::<$K>(
                    cast_ref($weights),
                    cast($input),
                    cast($state),
                    $lengths,
                ));
            }
        )*
    };
}

/// Whether the layers of `B` run native kernels: `B` is one of the backends this build has them for.
/// Where it is not, every layer runs the [`fallback`] (and `Autodiff<B>` differentiates it operation
/// by operation).
pub fn has_kernels<B: Backend>() -> bool {
    macro_rules! is_one_of {
        ($($K:ty),* $(,)?) => {
            $(
                if same::<B, $K>() {
                    return true;
                }
            )*
        };
    }
    kernel_backends!(is_one_of);
    false
}

/// Runs the layer over a padded batch `input` `[batch, time, in]` whose sequence `b` is `lengths[b]`
/// steps long (every step when `None`), from `state` (zeros when `None`): through the kernels of `B`
/// where it has them ([`lengths::kernel_layer`]), else the [`fallback`]. Returns the output sequence,
/// zero past each length, and each sequence's state after its own last step.
pub fn layer<B: Backend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
) -> (Sequence<B>, RecurrentState<B>) {
    kernel_backends!(run_on, B, kernel_layer, (weights, input, state, lengths));
    let [batch, time, _] = input.dims();
    if let Some(lengths) = lengths {
        lengths::check_lengths(lengths, batch, time);
        if lengths.iter().any(|&l| l != time) {
            return fallback::masked_layer(weights, input, state, lengths);
        }
    }
    fallback::layer(weights, input, state)
}

/// [`layer`]'s final state alone: where `B` has kernels and every row runs every step, the per-step
/// outputs are never written ([`lengths::kernel_final_state`]).
pub fn final_state<B: Backend>(
    weights: &LayerWeights<B>,
    input: Sequence<B>,
    state: Option<RecurrentState<B>>,
    lengths: Option<&[usize]>,
) -> RecurrentState<B> {
    kernel_backends!(
        run_on,
        B,
        kernel_final_state,
        (weights, input, state, lengths)
    );
    layer(weights, input, state, lengths).1
}

/// Whether `A` and `B` are one type.
fn same<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

/// `value` as `U`, which the caller has checked to be `T` itself ([`same`]).
fn cast<T: 'static, U: 'static>(value: T) -> U {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
        .expect("cast between two names of one type")
}

/// `value` as `&U`, which the caller has checked to be `T` itself ([`same`]).
fn cast_ref<T: 'static, U: 'static>(value: &T) -> &U {
    (value as &dyn Any)
        .downcast_ref::<U>()
        .expect("cast between two names of one type")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backends_with_kernels_are_found_and_others_are_not() {
        assert!(has_kernels::<NdArray>());
        assert!(has_kernels::<Autodiff<NdArray>>());
        assert!(has_kernels::<Flex>());
        assert!(has_kernels::<Autodiff<Flex>>());
        assert!(!has_kernels::<NdArray<f64>>());
        assert!(!has_kernels::<Autodiff<NdArray<f64>>>());
    }

    #[test]
    fn cast_moves_a_value_between_names_of_its_type() {
        type Same = NdArray<f32>;
        let weights: Vec<u8> = vec![1, 2, 3];
        let moved: Vec<u8> = cast(weights);
        assert_eq!(moved, [1, 2, 3]);
        assert!(same::<NdArray, Same>());
    }
}
