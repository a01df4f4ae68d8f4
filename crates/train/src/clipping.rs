//! Gradient clipping before the optimizer step, with PyTorch's semantics.

use burn::config::Config;
use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

/// How gradients are clipped before each optimizer step.
#[derive(Config, Debug, PartialEq)]
pub enum ClippingConfig {
    /// Scales all gradients together so that their global L2 norm is at most `max_norm`
    /// (PyTorch's `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)`, when below 1). Burn's own
    /// `GradientClippingConfig::Norm` clips each parameter separately, which is a different method.
    Norm {
        /// The largest global norm let through.
        max_norm: f64,
    },
    /// Clamps every gradient element to `[-max_value, max_value]` (PyTorch's `clip_grad_value_`),
    /// through Burn's `GradientClippingConfig::Value`.
    Value {
        /// The largest magnitude of an element.
        max_value: f64,
    },
}

impl ClippingConfig {
    /// Checks that the threshold is a positive finite number.
    pub fn validate(&self) -> Result<(), String> {
        let (field, value) = match *self {
            ClippingConfig::Norm { max_norm } => ("Norm.max_norm", max_norm),
            ClippingConfig::Value { max_value } => ("Value.max_value", max_value),
        };
        if value > 0.0 && value.is_finite() {
            Ok(())
        } else {
            Err(format!(
                "field `gradient_clipping.{field}` is {value}: it must be a positive number"
            ))
        }
    }

    /// The clipping the optimizer applies itself (element-wise), if this is one.
    pub fn optimizer_clipping(&self) -> Option<GradientClippingConfig> {
        match *self {
            ClippingConfig::Value { max_value } => {
                Some(GradientClippingConfig::Value(max_value as f32))
            }
            ClippingConfig::Norm { .. } => None,
        }
    }

    /// The global norm to clip to in the training step, if this is norm clipping.
    pub fn max_norm(&self) -> Option<f64> {
        match *self {
            ClippingConfig::Norm { max_norm } => Some(max_norm),
            ClippingConfig::Value { .. } => None,
        }
    }
}

/// Scales the gradients of `module`'s parameters so that their global L2 norm is at most `max_norm`.
///
/// The squared norms are summed in the module's parameter order, so the result does not depend on
/// anything but the gradients.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> GradientsParams {
    let mut sum = SquaredNorm::<B> {
        grads: &grads,
        total: None,
    };
    module.visit(&mut sum);
    let Some(total) = sum.total else {
        return grads;
    };
    let norm = total.into_scalar().elem::<f64>().sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale {
            grads: &mut grads,
            factor,
        });
    }
    grads
}

/// Sums the squared gradient elements of every parameter visited.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let squares = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

/// Multiplies the gradient of every parameter visited by `factor`.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let id: ParamId = param.id;
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) {
            self.grads.register(id, grad.mul_scalar(self.factor));
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    type A = Autodiff<NdArray>;

    fn gradients(model: &Linear<A>) -> GradientsParams {
        let input =
            Tensor::<A, 2>::random([8, 5], Distribution::Normal(0.0, 3.0), &Default::default());
        let loss = model.forward(input).powf_scalar(2.0).sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// Every gradient of `model`, flattened in parameter order.
    fn values(model: &Linear<A>, grads: &GradientsParams) -> Vec<f32> {
        let weight = grads.get::<NdArray, 2>(model.weight.id).unwrap();
        let bias = grads
            .get::<NdArray, 1>(model.bias.as_ref().unwrap().id)
            .unwrap();
        let mut all = weight.into_data().to_vec::<f32>().unwrap();
        all.extend(bias.into_data().to_vec::<f32>().unwrap());
        all
    }

    fn norm(values: &[f32]) -> f64 {
        values
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn large_gradients_are_scaled_together_to_the_norm() {
        let model = LinearConfig::new(5, 3).init::<A>(&Default::default());
        let grads = gradients(&model);
        let before = values(&model, &grads);
        assert!(
            norm(&before) > 2.0,
            "the test needs a norm above the threshold"
        );
        let clipped = clip_global_norm(&model, grads, 0.5);
        let after = values(&model, &clipped);
        assert!((norm(&after) - 0.5).abs() < 1e-5, "norm {}", norm(&after));
        // One factor for every element of every parameter: the direction is kept.
        let factor = after[0] / before[0];
        for (a, b) in after.iter().zip(&before) {
            assert!((a - b * factor).abs() <= 1e-6 * b.abs().max(1.0));
        }
    }

    #[test]
    fn gradients_within_the_norm_are_left_alone() {
        let model = LinearConfig::new(5, 3).init::<A>(&Default::default());
        let grads = gradients(&model);
        let before = values(&model, &grads);
        let kept = clip_global_norm(&model, grads, 1e6);
        assert_eq!(values(&model, &kept), before);
    }

    #[test]
    fn thresholds_must_be_positive() {
        assert!(ClippingConfig::Norm { max_norm: 0.0 }.validate().is_err());
        assert!(
            ClippingConfig::Value {
                max_value: f64::INFINITY
            }
            .validate()
            .is_err()
        );
        assert!(ClippingConfig::Value { max_value: 0.1 }.validate().is_ok());
        assert_eq!(ClippingConfig::Value { max_value: 0.1 }.max_norm(), None);
    }
}
