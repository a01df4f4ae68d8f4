//! The `bench` binary measures what it says, on a tiny budget, and refuses bad input with a message.

use std::path::PathBuf;
use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap()
}

#[test]
fn reports_training_and_inference_throughput_as_json() {
    let output = bench(&[
        "--json",
        "--train-steps",
        "3",
        "--repeats",
        "2",
        "--infer-batch",
        "64,7",
        "--infer-samples",
        "64",
        "--instruction-set",
        "portable",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["framework"], "burn");
    assert_eq!(
        report["model"]["hidden_size"], 10,
        "configs/seed.json by default"
    );
    assert_eq!(report["model"]["steps"], 28);
    assert_eq!(report["train"]["batch_size"], 64);
    assert_eq!(report["instruction_set"], "portable");
    let positive = |v: &serde_json::Value| v.as_f64().is_some_and(|x| x.is_finite() && x > 0.0);
    assert!(positive(&report["train"]["samples_per_s"]), "{report}");
    assert_eq!(report["train"]["repeats"].as_array().unwrap().len(), 2);
    let infer = report["infer"].as_array().unwrap();
    assert_eq!(infer.len(), 2);
    assert_eq!(infer[1]["batch_size"], 7);
    assert!(
        infer.iter().all(|t| positive(&t["samples_per_s"])),
        "{report}"
    );
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    for (args, expected) in [
        (&["--repeats", "0"][..], "must be at least 1"),
        (&["--infer-batch", "0"][..], "--infer-batch 0"),
        (&["--config", "no/such.json"][..], "no/such.json"),
        (
            &["--instruction-set", "sse9"][..],
            "one of: avx512, avx2-fma, portable",
        ),
    ] {
        let output = bench(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr.contains(expected) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}
