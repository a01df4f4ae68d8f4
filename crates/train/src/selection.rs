//! Which epoch's model a run reports, and the checkpoints kept so that it can still be loaded.
//!
//! A run with a validation split may report the model of its best validation epoch rather than of its
//! last one; that choice is the config's `model_selection`, made on validation numbers only, and the
//! test set is then evaluated once, on the chosen model.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;
use serde::{Deserialize, Serialize};

use crate::metrics::{EpochMetrics, RunMetrics};

/// Which epoch's model becomes the run's `model.mpk` (and is tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSelection {
    /// The last epoch's: the number of epochs is the choice, made before the run.
    #[default]
    Last,
    /// The epoch with the highest validation accuracy (the earliest of equals).
    BestValidAccuracy,
    /// The epoch with the lowest validation loss (the earliest of equals).
    BestValidLoss,
}

impl ModelSelection {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            ModelSelection::Last => "last",
            ModelSelection::BestValidAccuracy => "best_valid_accuracy",
            ModelSelection::BestValidLoss => "best_valid_loss",
        }
    }

    /// Whether the choice looks at validation numbers (and so needs a validation split that is not
    /// the test set).
    pub fn uses_validation(self) -> bool {
        self != ModelSelection::Last
    }

    /// The chosen epoch among `epochs` (any order); `None` when none has the number it looks at
    /// (a NaN never wins).
    pub fn choose(self, epochs: &[EpochMetrics]) -> Option<usize> {
        let score = |e: &EpochMetrics| match self {
            ModelSelection::Last => e.epoch as f64,
            ModelSelection::BestValidAccuracy => e.valid_accuracy,
            ModelSelection::BestValidLoss => -e.valid_loss,
        };
        let better = |e: &EpochMetrics, held: &EpochMetrics| {
            // The earliest of equals: a later epoch must be strictly better.
            score(e) > score(held) || (score(e) == score(held) && e.epoch < held.epoch)
        };
        epochs
            .iter()
            .filter(|e| !score(e).is_nan())
            .fold(None, |best: Option<&EpochMetrics>, e| match best {
                Some(held) if !better(e, held) => Some(held),
                _ => Some(e),
            })
            .map(|e| e.epoch)
    }
}

/// Burn's checkpointing strategy for a run: every epoch is saved; afterwards only the last two stay
/// (what `--resume` needs) and, when the run selects on validation, the best epoch so far. An epoch
/// whose validation numbers are not recorded yet is kept until they are, so the epoch that will be
/// chosen is never deleted, whatever the order in which Burn's threads deliver them.
pub(crate) struct KeepCheckpoints {
    selection: ModelSelection,
    metrics: Arc<Mutex<RunMetrics>>,
    on_disk: BTreeSet<usize>,
}

impl KeepCheckpoints {
    /// `on_disk`: the epochs whose checkpoints the run directory holds (a resumed run's).
    pub(crate) fn new(
        selection: ModelSelection,
        metrics: Arc<Mutex<RunMetrics>>,
        on_disk: impl IntoIterator<Item = usize>,
    ) -> Self {
        Self {
            selection,
            metrics,
            on_disk: on_disk.into_iter().collect(),
        }
    }

    /// The epochs to delete once `epoch` is saved.
    fn stale(&self, epoch: usize) -> Vec<usize> {
        let metrics = self.metrics.lock().expect("metrics lock");
        let recorded: BTreeSet<usize> = metrics.epochs.iter().map(|e| e.epoch).collect();
        let best = if self.selection.uses_validation() {
            self.selection.choose(&metrics.epochs)
        } else {
            None
        };
        self.on_disk
            .iter()
            .copied()
            .filter(|&k| {
                let recent = k + 2 > epoch;
                let pending = self.selection.uses_validation() && !recorded.contains(&k);
                !recent && !pending && Some(k) != best
            })
            .collect()
    }
}

impl CheckpointingStrategy for KeepCheckpoints {
    fn checkpointing(&mut self, epoch: usize, _: &EventStoreClient) -> Vec<CheckpointingAction> {
        self.after_epoch(epoch)
    }
}

impl KeepCheckpoints {
    /// Saves `epoch` and deletes what is no longer needed.
    fn after_epoch(&mut self, epoch: usize) -> Vec<CheckpointingAction> {
        self.on_disk.insert(epoch);
        let mut actions = vec![CheckpointingAction::Save];
        for stale in self.stale(epoch) {
            self.on_disk.remove(&stale);
            actions.push(CheckpointingAction::Delete(stale));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, valid_accuracy: f64, valid_loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            valid_loss,
            valid_accuracy,
            train_seconds: 1.0,
            wall_seconds: 1.0,
            train_samples_per_second: 1.0,
            learning_rate: None,
        }
    }

    fn metrics(epochs: Vec<EpochMetrics>) -> Arc<Mutex<RunMetrics>> {
        Arc::new(Mutex::new(RunMetrics {
            crate_version: String::new(),
            backend: String::new(),
            validation: String::new(),
            train_items: 0,
            valid_items: 0,
            data_files: Vec::new(),
            epochs,
            model_epoch: None,
            test: None,
        }))
    }

    #[test]
    fn each_selection_chooses_its_epoch() {
        let epochs = vec![
            epoch(1, 90.0, 0.30),
            epoch(2, 92.0, 0.28),
            epoch(3, 92.0, 0.25),
            epoch(4, 91.0, 0.26),
        ];
        assert_eq!(ModelSelection::Last.choose(&epochs), Some(4));
        // Equal accuracy: the earlier epoch.
        assert_eq!(ModelSelection::BestValidAccuracy.choose(&epochs), Some(2));
        assert_eq!(ModelSelection::BestValidLoss.choose(&epochs), Some(3));
        let reversed: Vec<_> = epochs.iter().rev().cloned().collect();
        assert_eq!(ModelSelection::BestValidAccuracy.choose(&reversed), Some(2));
        assert_eq!(ModelSelection::Last.choose(&[]), None);
    }

    #[test]
    fn a_nan_epoch_is_never_chosen_over_a_number() {
        let epochs = vec![epoch(1, f64::NAN, f64::NAN), epoch(2, 10.0, 2.0)];
        assert_eq!(ModelSelection::BestValidAccuracy.choose(&epochs), Some(2));
        assert_eq!(ModelSelection::BestValidLoss.choose(&epochs), Some(2));
        let epochs = vec![epoch(1, 10.0, 2.0), epoch(2, f64::NAN, f64::NAN)];
        assert_eq!(ModelSelection::BestValidAccuracy.choose(&epochs), Some(1));
    }

    #[test]
    fn names_are_the_config_values() {
        for selection in [
            ModelSelection::Last,
            ModelSelection::BestValidAccuracy,
            ModelSelection::BestValidLoss,
        ] {
            let json = serde_json::to_string(&selection).unwrap();
            assert_eq!(json, format!("\"{}\"", selection.name()));
        }
    }

    /// Runs the strategy over epochs `1..=n`, recording each epoch's metrics `lag` epochs after its
    /// checkpoint; returns the epochs left on disk.
    fn keep(selection: ModelSelection, accuracies: &[f64], lag: usize) -> Vec<usize> {
        let metrics = metrics(Vec::new());
        let mut strategy = KeepCheckpoints::new(selection, metrics.clone(), []);
        for (i, _) in accuracies.iter().enumerate() {
            let now = i + 1;
            if now > lag {
                let recorded = now - lag;
                metrics
                    .lock()
                    .unwrap()
                    .push_epoch(epoch(recorded, accuracies[recorded - 1], 1.0));
            }
            for action in strategy.after_epoch(now) {
                if let CheckpointingAction::Delete(k) = action {
                    assert!(k + 2 <= now, "deleted a recent epoch {k} at {now}");
                }
            }
        }
        strategy.on_disk.iter().copied().collect()
    }

    #[test]
    fn the_last_two_and_the_best_stay() {
        let accuracies = [80.0, 85.0, 91.0, 90.0, 89.0, 88.0];
        assert_eq!(keep(ModelSelection::Last, &accuracies, 0), vec![5, 6]);
        assert_eq!(
            keep(ModelSelection::BestValidAccuracy, &accuracies, 0),
            vec![3, 5, 6]
        );
        // Metrics arriving an epoch late keep the unrecorded epoch too, and lose nothing.
        assert_eq!(
            keep(ModelSelection::BestValidAccuracy, &accuracies, 1),
            vec![3, 5, 6]
        );
        // Never recorded at all: nothing past the last two is deleted.
        assert_eq!(
            keep(ModelSelection::BestValidAccuracy, &accuracies, 99),
            vec![1, 2, 3, 4, 5, 6]
        );
    }
}
