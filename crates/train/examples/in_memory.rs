//! Training on sequences held in memory, through the library: no files, any number of features per
//! step, any lengths. Here: 2-feature sequences of 4–20 steps whose class is whether the first
//! feature rises, falls or stays flat.
//!
//! `cargo run --release -p train --example in_memory -- [RUN_DIR]`

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use data::TsDataset;
use train::{Display, RunOptions, TrainConfig};

/// `n` labelled sequences; `seed` varies the lengths and the noise.
fn sequences(n: usize, seed: u64) -> Vec<(Vec<[f32; 2]>, usize)> {
    let mut state = seed;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.3
    };
    (0..n)
        .map(|k| {
            let label = k % 3;
            let slope = [1.0, -1.0, 0.0][label];
            let length = 4 + (k * 5 + seed as usize) % 17;
            let steps = (0..length)
                .map(|t| [slope * t as f32 / length as f32 + noise(), 1.0 + noise()])
                .collect();
            (steps, label)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let run_dir = std::env::args()
        .nth(1)
        .map_or_else(|| std::env::temp_dir().join("in-memory-run"), PathBuf::from);
    let accuracy = run(&run_dir)?;
    println!("test accuracy {accuracy:.2}%; run in {}", run_dir.display());
    Ok(())
}

/// Trains into `run_dir`; returns the test accuracy (%). The tests run this too.
pub fn run(run_dir: &Path) -> anyhow::Result<f64> {
    let classes: Vec<String> = ["rises", "falls", "flat"].map(String::from).to_vec();
    let train = TsDataset::from_sequences(classes.clone(), sequences(300, 1))?;
    let test = TsDataset::from_sequences(classes, sequences(90, 2))?;

    // The general `.ts` recipe, smaller: sizes come from the data.
    let mut config = TrainConfig::load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/sequences.json"),
    )?;
    config.model.hidden_size = 16;
    config.model.num_layers = 1;
    // 20 % of the training sequences held out (the recipe's share), 8 epochs instead of its
    // floor of 600 steps.
    config.num_epochs = 8;
    config.min_steps = None;

    let outcome = train::train_sequences::<Autodiff<NdArray>>(
        RunOptions {
            config,
            run_dir: run_dir.to_path_buf(),
            resume: false,
            overwrite: true,
            backend: "ndarray".into(),
            display: Display::Lines,
            stop: Default::default(),
        },
        train,
        test,
        Default::default(),
    )?;
    let test = outcome.metrics.test.expect("validation was held out");
    Ok(test.accuracy)
}
