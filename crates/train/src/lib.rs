//! Training recurrent sequence models with Burn's Learner: classifiers of MNIST or `.ts` sequence
//! files, and character language models of a text.
//!
//! [`train`] runs one configured training on any autodiff backend and writes a self-describing run
//! directory ([`RunDir`]); the `train` binary wraps it in a command line and picks the backend. The
//! data source is the config's (`data.source`), behind one seam (`source`); what the run learns
//! is its task (`task`), the run directory's lifecycle its own module (`run_dir`).

pub mod artifacts;
pub mod clipping;
pub mod config;
pub mod download;
mod error;
#[cfg(all(
    debug_assertions,
    feature = "ndarray",
    not(any(feature = "flex", feature = "wgpu", feature = "cuda"))
))]
#[doc(hidden)]
pub mod instances;
pub mod metrics;
mod optimizer;
mod recorder;
mod run;
mod run_dir;
pub mod schedule;
pub mod selection;
mod source;
mod step;
mod task;

pub use artifacts::RunDir;
pub use clipping::ClippingConfig;
pub use config::{ConfigFileError, OptimizerConfig, TrainConfig};
pub use error::TrainError;
pub use metrics::{EpochMetrics, RunMetrics};
pub use optimizer::WithOptimizer;
pub use run::{Display, RunOptions, RunOutcome, finish, train, train_sequences};
pub use schedule::{Decay, Schedule, ScheduleConfig};
pub use selection::ModelSelection;
pub use step::{Trainable, TrainableRecord};
pub use task::{Batch, Task};
