//! Training recurrent sequence classifiers with Burn's Learner, on MNIST or on `.ts` sequence files.
//!
//! [`train`] runs one configured training on any autodiff backend and writes a self-describing run
//! directory ([`RunDir`]); the `train` binary wraps it in a command line and picks the backend. The
//! data source is the config's (`data.source`), behind one seam (`source`).

pub mod artifacts;
pub mod clipping;
pub mod config;
pub mod download;
pub mod metrics;
mod optimizer;
mod recorder;
mod run;
pub mod schedule;
pub mod selection;
mod source;
mod step;

pub use artifacts::RunDir;
pub use clipping::ClippingConfig;
pub use config::{ConfigFileError, OptimizerConfig, TrainConfig};
pub use metrics::{EpochMetrics, RunMetrics};
pub use optimizer::WithOptimizer;
pub use run::{Display, RunOptions, RunOutcome, TrainError, finish, train, train_sequences};
pub use schedule::{Decay, Schedule, ScheduleConfig};
pub use selection::ModelSelection;
pub use step::{Trainable, TrainableRecord};
