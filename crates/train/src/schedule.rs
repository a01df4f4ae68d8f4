//! Learning-rate schedules: `optimizer.learning_rate` scaled over the run, batch by batch, as PyTorch's
//! `LinearLR` warm-up followed by `StepLR`, `MultiStepLR` or `CosineAnnealingLR`.

use burn::config::Config;
use burn::optim::LearningRate;
use burn::optim::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;

/// How the learning rate changes over a run. The default is today's: constant, no warm-up.
#[derive(Config, Debug, PartialEq)]
pub struct ScheduleConfig {
    /// Epochs of linear warm-up: batch i of the first `warmup_epochs` epochs uses
    /// `learning_rate · (i + 1) / (warm-up batches)`.
    #[config(default = 0)]
    pub warmup_epochs: usize,
    /// What follows the warm-up.
    #[config(default = "Decay::Constant")]
    pub decay: Decay,
}

/// The learning rate after the warm-up.
#[derive(Config, Debug, PartialEq)]
pub enum Decay {
    /// `optimizer.learning_rate` throughout.
    Constant,
    /// Multiplied by `gamma` every `every_epochs` epochs (PyTorch's `StepLR` stepped per epoch):
    /// epoch e (1-based) uses `learning_rate · gamma^⌊(e − 1) / every_epochs⌋`.
    Step {
        /// Epochs between two reductions.
        every_epochs: usize,
        /// Factor of each reduction, in (0, 1].
        gamma: f64,
    },
    /// Multiplied by `gamma` after each of the listed epochs (PyTorch's `MultiStepLR` stepped per
    /// epoch): epoch e (1-based) uses `learning_rate · gamma^(milestones below e)`.
    MultiStep {
        /// The epochs after which the rate drops, increasing, each at least 1.
        milestones: Vec<usize>,
        /// Factor of each reduction, in (0, 1].
        gamma: f64,
    },
    /// Half a cosine from `optimizer.learning_rate` down to `min_learning_rate`, reached at the last
    /// batch of `num_epochs` (PyTorch's `CosineAnnealingLR` stepped per batch).
    Cosine {
        /// The learning rate at the end of the run.
        min_learning_rate: f64,
    },
}

impl ScheduleConfig {
    /// Checks the values against `base`, the optimizer's learning rate.
    pub fn validate(&self, base: f64) -> Result<(), String> {
        match &self.decay {
            Decay::Constant => Ok(()),
            Decay::Step {
                every_epochs,
                gamma,
            } => {
                if *every_epochs == 0 {
                    return Err(
                        "field `lr_schedule.decay.Step.every_epochs` is 0: it must be at least 1"
                            .into(),
                    );
                }
                check_gamma("Step", *gamma)
            }
            Decay::MultiStep { milestones, gamma } => {
                if milestones.first() == Some(&0) || milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "field `lr_schedule.decay.MultiStep.milestones` is {milestones:?}: it must list epochs from 1 up, increasing"
                    ));
                }
                check_gamma("MultiStep", *gamma)
            }
            Decay::Cosine { min_learning_rate } => {
                let min_learning_rate = *min_learning_rate;
                if !(min_learning_rate >= 0.0 && min_learning_rate <= base) {
                    return Err(format!(
                        "field `lr_schedule.decay.Cosine.min_learning_rate` is {min_learning_rate}: it must be in [0, optimizer.learning_rate = {base}]"
                    ));
                }
                Ok(())
            }
        }
    }

    /// The schedule of a run of `num_epochs` epochs of `batches_per_epoch` batches from `base`.
    pub fn schedule(&self, base: f64, batches_per_epoch: usize, num_epochs: usize) -> Schedule {
        Schedule {
            config: self.clone(),
            base,
            batches_per_epoch: batches_per_epoch.max(1),
            num_epochs,
            batch: 0,
        }
    }
}

/// A decay's factor `gamma` must lie in (0, 1]; the error names the field of `variant`.
fn check_gamma(variant: &str, gamma: f64) -> Result<(), String> {
    if gamma > 0.0 && gamma <= 1.0 {
        Ok(())
    } else {
        Err(format!(
            "field `lr_schedule.decay.{variant}.gamma` is {gamma}: it must be in (0, 1]"
        ))
    }
}

/// A [`ScheduleConfig`] over a concrete run: the learning rate of every batch. It is Burn's
/// [`LrScheduler`], and its record (the batch count) is checkpointed with the optimizer, so that
/// `--resume` continues the curve where it stopped.
#[derive(Clone, Debug)]
pub struct Schedule {
    config: ScheduleConfig,
    base: f64,
    batches_per_epoch: usize,
    num_epochs: usize,
    batch: usize,
}

impl Schedule {
    /// The learning rate of batch `batch` of the run (0-based, counted over all epochs).
    pub fn at(&self, batch: usize) -> LearningRate {
        let warmup = self.config.warmup_epochs * self.batches_per_epoch;
        if batch < warmup {
            return self.base * (batch + 1) as f64 / warmup as f64;
        }
        match &self.config.decay {
            Decay::Constant => self.base,
            Decay::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = batch / self.batches_per_epoch;
                self.base * gamma.powi((epoch / every_epochs) as i32)
            }
            Decay::MultiStep { milestones, gamma } => {
                // Epochs completed before this batch's (0-based index = the 1-based epoch before it).
                let done = batch / self.batches_per_epoch;
                let drops = milestones.iter().filter(|&&m| m <= done).count();
                self.base * gamma.powi(drops as i32)
            }
            Decay::Cosine { min_learning_rate } => {
                let min_learning_rate = *min_learning_rate;
                let total = self.num_epochs * self.batches_per_epoch;
                let span = total.saturating_sub(warmup + 1).max(1);
                let progress = ((batch - warmup) as f64 / span as f64).min(1.0);
                min_learning_rate
                    + (self.base - min_learning_rate)
                        * (1.0 + (std::f64::consts::PI * progress).cos())
                        / 2.0
            }
        }
    }

    /// The learning rate of the first batch of `epoch` (1-based), as `metrics.json` records it.
    pub fn at_epoch(&self, epoch: usize) -> LearningRate {
        self.at(epoch.saturating_sub(1) * self.batches_per_epoch)
    }
}

impl LrScheduler for Schedule {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let rate = self.at(self.batch);
        self.batch += 1;
        rate
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.batch
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.batch = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn constant_is_the_base_rate_everywhere() {
        let schedule = ScheduleConfig::new().schedule(0.01, 10, 3);
        assert!((0..30).all(|i| schedule.at(i) == 0.01));
    }

    #[test]
    fn warmup_rises_linearly_then_hands_over() {
        let schedule = ScheduleConfig::new()
            .with_warmup_epochs(1)
            .schedule(1.0, 4, 3);
        let rates: Vec<f64> = (0..6).map(|i| schedule.at(i)).collect();
        assert_eq!(rates, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn step_decays_at_epoch_boundaries() {
        let schedule = ScheduleConfig::new()
            .with_decay(Decay::Step {
                every_epochs: 2,
                gamma: 0.5,
            })
            .schedule(1.0, 3, 6);
        let per_epoch: Vec<f64> = (1..=6).map(|e| schedule.at_epoch(e)).collect();
        assert_eq!(per_epoch, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
        assert_eq!(schedule.at(5), 1.0);
        assert_eq!(schedule.at(6), 0.5);
    }

    #[test]
    fn multistep_decays_after_each_milestone() {
        let schedule = ScheduleConfig::new()
            .with_decay(Decay::MultiStep {
                milestones: vec![2, 5],
                gamma: 0.1,
            })
            .schedule(1.0, 3, 7);
        let per_epoch: Vec<f64> = (1..=7).map(|e| schedule.at_epoch(e)).collect();
        let expected = [1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01];
        assert!(
            per_epoch.iter().zip(expected).all(|(&a, b)| close(a, b)),
            "{per_epoch:?}"
        );
        // The drop comes with epoch 3's first batch.
        assert_eq!(schedule.at(5), 1.0);
        assert!(close(schedule.at(6), 0.1));
        // `Step` every n epochs is `MultiStep` at n, 2n, ...
        let step = ScheduleConfig::new()
            .with_decay(Decay::Step {
                every_epochs: 2,
                gamma: 0.1,
            })
            .schedule(1.0, 3, 7);
        let multi = ScheduleConfig::new()
            .with_decay(Decay::MultiStep {
                milestones: vec![2, 4, 6],
                gamma: 0.1,
            })
            .schedule(1.0, 3, 7);
        assert!((0..21).all(|i| step.at(i) == multi.at(i)));
    }

    #[test]
    fn cosine_runs_from_base_to_minimum_over_the_run() {
        let schedule = ScheduleConfig::new()
            .with_warmup_epochs(1)
            .with_decay(Decay::Cosine {
                min_learning_rate: 0.1,
            })
            .schedule(1.0, 5, 3);
        // Warm-up batches 0..5, then the cosine from batch 5 (the base) to batch 14 (the minimum).
        assert!(close(schedule.at(4), 1.0));
        assert!(close(schedule.at(5), 1.0));
        assert!(close(schedule.at(14), 0.1));
        let middle = schedule.at(5 + 9 / 2);
        assert!(middle < 1.0 && middle > 0.1);
        assert!((5..14).all(|i| schedule.at(i + 1) < schedule.at(i)));
    }

    #[test]
    fn stepping_and_records_continue_the_curve() {
        let config = ScheduleConfig::new().with_decay(Decay::Cosine {
            min_learning_rate: 0.0,
        });
        let mut first = config.schedule(1.0, 4, 2);
        let seen: Vec<f64> = (0..3).map(|_| first.step()).collect();
        assert_eq!(seen, [first.at(0), first.at(1), first.at(2)]);
        let record = <Schedule as LrScheduler>::to_record::<burn::backend::NdArray>(&first);
        let mut resumed = config
            .schedule(1.0, 4, 2)
            .load_record::<burn::backend::NdArray>(record);
        assert_eq!(resumed.step(), first.step());
    }

    #[test]
    fn invalid_values_are_named() {
        let step = |every_epochs, gamma| {
            ScheduleConfig::new()
                .with_decay(Decay::Step {
                    every_epochs,
                    gamma,
                })
                .validate(0.1)
        };
        assert!(step(0, 0.5).unwrap_err().contains("every_epochs"));
        assert!(step(1, 0.0).unwrap_err().contains("gamma"));
        assert!(step(1, f64::NAN).unwrap_err().contains("gamma"));
        assert!(step(3, 1.0).is_ok());
        let cosine = |min_learning_rate| {
            ScheduleConfig::new()
                .with_decay(Decay::Cosine { min_learning_rate })
                .validate(0.1)
        };
        let multistep = |milestones: Vec<usize>, gamma| {
            ScheduleConfig::new()
                .with_decay(Decay::MultiStep { milestones, gamma })
                .validate(0.1)
        };
        assert!(
            multistep(vec![0, 3], 0.1)
                .unwrap_err()
                .contains("milestones")
        );
        assert!(
            multistep(vec![3, 3], 0.1)
                .unwrap_err()
                .contains("milestones")
        );
        assert!(
            multistep(vec![5, 3], 0.1)
                .unwrap_err()
                .contains("milestones")
        );
        assert!(multistep(vec![3], 1.5).unwrap_err().contains("gamma"));
        assert!(multistep(vec![], 0.5).is_ok());
        assert!(multistep(vec![22, 35], 0.1).is_ok());
        assert!(cosine(0.2).unwrap_err().contains("min_learning_rate"));
        assert!(cosine(-1.0).is_err());
        assert!(cosine(0.0).is_ok());
    }
}
