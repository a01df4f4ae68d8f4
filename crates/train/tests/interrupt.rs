//! The `train` binary under signals: SIGINT stops it after the current batch with exit code 130 and a
//! message saying how to resume; `kill -9` leaves only complete files under their final names; in
//! both cases `--resume` ends exactly where an uninterrupted run does. Also: a non-finite loss stops
//! the run naming the epoch and batch, and an unwritable run directory fails before any training.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;
use train::{RunMetrics, TrainConfig};

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("train-interrupt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config of two epochs long enough (a few seconds each) for a signal to land mid-epoch.
fn config_file(dir: &Path, edit: impl FnOnce(&mut TrainConfig)) -> PathBuf {
    // MNIST_DIR, else the cache that `train` downloads into; never the network.
    if let Err(error) = data::MnistFiles::locate(None) {
        panic!("this test needs real MNIST: {error}");
    }
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.json");
    let mut config = TrainConfig::load(seed).unwrap();
    config.data.train_limit = Some(12_000);
    config.data.eval_limit = Some(500);
    config.num_epochs = 2;
    edit(&mut config);
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn train(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_train"));
    // The data is where the test found it: never download.
    command.args(args).arg("--plain").arg("--offline");
    command
}

fn run(args: &[&str]) -> Output {
    let output = train(args).output().unwrap();
    assert!(
        output.status.success(),
        "train {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts a run and waits until its first epoch is completely checkpointed.
fn start_and_wait_for_epoch_1(config: &Path, dir: &Path) -> Child {
    let mut child = train(&[
        "--config",
        config.to_str().unwrap(),
        "--artifacts",
        dir.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Burn writes the three files of a checkpoint one after the other (in a background thread).
    let checkpoint =
        ["model", "optim", "scheduler"].map(|part| dir.join(format!("checkpoint/{part}-1.mpk")));
    let start = Instant::now();
    while !checkpoint.iter().all(|file| file.exists()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Per-epoch numbers and a digest of the final weights of a finished run.
fn results(dir: &Path) -> (Vec<(f64, f64, f64)>, String) {
    let metrics = RunMetrics::load(&dir.join("metrics.json")).unwrap();
    let numbers = metrics
        .epochs
        .iter()
        .map(|e| (e.train_loss, e.valid_loss, e.valid_accuracy))
        .collect();
    let config = TrainConfig::load(dir.join("config.json")).unwrap();
    let model = config
        .model
        .load::<burn::backend::NdArray>(dir.join("model.mpk"), &Default::default())
        .unwrap();
    let mut digest = sha2::Sha256::new();
    for (name, tensor) in model::pytorch::StateDict::from_classifier(&model).tensors {
        if let model::pytorch::HostTensor::Float { values, .. } = tensor {
            digest.update(name.as_bytes());
            values.iter().for_each(|v| digest.update(v.to_le_bytes()));
        }
    }
    let digest = digest.finalize();
    (numbers, format!("{digest:x}"))
}

#[test]
fn interrupted_runs_resume_to_the_uninterrupted_result() {
    let root = temp("signals");
    let config = config_file(&root, |_| {});
    let whole = root.join("whole");
    run(&[
        "--config",
        config.to_str().unwrap(),
        "--artifacts",
        whole.to_str().unwrap(),
    ]);
    let expected = results(&whole);
    assert_eq!(expected.0.len(), 2);

    // SIGINT during epoch 2: a clean stop that says how to continue.
    let dir = root.join("sigint");
    let child = start_and_wait_for_epoch_1(&config, &dir);
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted during epoch 2")
            && stderr.contains("epoch 1 is complete")
            && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(
        !dir.join("model.mpk").exists(),
        "an unfinished run left a final model"
    );
    let metrics = RunMetrics::load(&dir.join("metrics.json")).unwrap();
    assert_eq!(metrics.epochs.len(), 1);
    let output = run(&["--resume", "--artifacts", dir.to_str().unwrap()]);
    // It says that it reads the run's own config, not the default --config.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let saved = dir.join("config.json");
    assert!(
        stdout.contains(&format!("{} -> ", saved.display())),
        "{stdout}"
    );
    assert_eq!(results(&dir), expected, "SIGINT then --resume");

    // kill -9 during epoch 2: no half-written file under a final name, and the same end.
    let dir = root.join("sigkill");
    let mut child = start_and_wait_for_epoch_1(&config, &dir);
    signal(&child, "KILL");
    child.wait().unwrap();
    for file in ["config.json", "metrics.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{file} is not complete JSON after kill -9: {e}"));
    }
    run(&["--resume", "--artifacts", dir.to_str().unwrap()]);
    assert_eq!(results(&dir), expected, "kill -9 then --resume");
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_epoch_and_batch() {
    let root = temp("nan");
    // A standard deviation this small turns every pixel into ±inf, so the first loss is NaN.
    let config = config_file(&root, |c| c.data.std = 1e-45);
    let dir = root.join("run");
    let output = train(&[
        "--config",
        config.to_str().unwrap(),
        "--artifacts",
        dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("became NaN at epoch 1, batch 1") && stderr.contains("learning_rate"),
        "{stderr}"
    );
    assert!(!dir.join("model.mpk").exists());
}

#[test]
fn an_unwritable_run_directory_fails_before_training() {
    let root = temp("unwritable");
    let config = config_file(&root, |_| {});
    // A path under a regular file cannot be created, whoever runs the test (root included).
    let blocker = root.join("not-a-directory");
    std::fs::write(&blocker, "").unwrap();
    let dir = blocker.join("run");
    let start = Instant::now();
    let output = train(&[
        "--config",
        config.to_str().unwrap(),
        "--artifacts",
        dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot create the run directory") && stderr.contains("--artifacts"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("epoch 1/"));
    assert!(start.elapsed() < Duration::from_secs(60));

    // The artifacts path itself is a file.
    let output = train(&[
        "--config",
        config.to_str().unwrap(),
        "--artifacts",
        blocker.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is a file, not a directory") && stderr.contains("--artifacts"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&blocker).unwrap(),
        "",
        "the file is left alone"
    );
}
