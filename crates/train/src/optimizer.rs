//! The optimizer a config names, built with PyTorch's semantics. Its concrete Burn type depends on the
//! config, so the code that uses it receives it through [`WithOptimizer`].

use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, Optimizer, RmsPropConfig, SgdConfig};
use burn::tensor::backend::AutodiffBackend;

use crate::OptimizerConfig;

/// Code to run with the optimizer of a config, whatever its concrete type (SGD, Adam or RMSProp).
pub trait WithOptimizer<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// What the code returns.
    type Output;

    /// Runs with `optimizer` and the config's `learning_rate`.
    fn run<O: Optimizer<M, B> + 'static>(self, optimizer: O, learning_rate: f64) -> Self::Output;
}

impl OptimizerConfig {
    /// Builds the optimizer this config describes, clipping gradients as `clipping` says (Burn's
    /// optimizer-side clipping), and hands it to `code`.
    pub fn with_optimizer<M, B, W>(
        &self,
        clipping: Option<GradientClippingConfig>,
        code: W,
    ) -> W::Output
    where
        M: AutodiffModule<B> + 'static,
        B: AutodiffBackend,
        W: WithOptimizer<M, B>,
    {
        let learning_rate = self.learning_rate();
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(dampening)
                        .with_nesterov(nesterov)
                });
                let optimizer = SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(weight_decay_config(weight_decay))
                    .with_gradient_clipping(clipping)
                    .init();
                code.run(optimizer, learning_rate)
            }
            OptimizerConfig::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
                ..
            } => {
                let optimizer = AdamConfig::new()
                    .with_beta_1(beta_1 as f32)
                    .with_beta_2(beta_2 as f32)
                    .with_epsilon(epsilon as f32)
                    .with_weight_decay(weight_decay_config(weight_decay))
                    .with_grad_clipping(clipping)
                    .init();
                code.run(optimizer, learning_rate)
            }
            OptimizerConfig::RmsProp {
                alpha,
                epsilon,
                momentum,
                centered,
                weight_decay,
                ..
            } => {
                let optimizer = RmsPropConfig::new()
                    .with_alpha(alpha as f32)
                    .with_epsilon(epsilon as f32)
                    .with_momentum(momentum as f32)
                    .with_centered(centered)
                    .with_weight_decay(weight_decay_config(weight_decay))
                    .with_grad_clipping(clipping)
                    .init();
                code.run(optimizer, learning_rate)
            }
        }
    }
}

fn weight_decay_config(penalty: f64) -> Option<WeightDecayConfig> {
    (penalty > 0.0).then(|| WeightDecayConfig::new(penalty as f32))
}
