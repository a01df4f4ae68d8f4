//! The `train` binary on a fresh machine: no MNIST_DIR, an empty cache (XDG_CACHE_HOME in a temporary
//! directory), and a mirror served on 127.0.0.1 by the test. It downloads MNIST, verifies it, trains,
//! and the next run uses the cache without a request; `--offline` and an unreachable mirror each give
//! one clear error. No test here reaches the internet.

#[path = "../../data/tests/mirror/mod.rs"]
mod mirror;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mirror::{Fault, Mirror, refused_url};

fn home(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("train-download-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cache(home: &Path) -> PathBuf {
    home.join("cache/lstm-mnist/mnist")
}

/// The smoke config for one epoch, in a fresh home whose cache is empty, with only `mirror` set.
fn train(home: &Path, mirror_env: Option<&str>, args: &[&str]) -> Output {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/smoke.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_train"));
    command
        .args(["--config", config.to_str().unwrap(), "--epochs", "1"])
        .arg("--artifacts")
        .arg(home.join("run"))
        .args(args)
        .env_remove("MNIST_DIR")
        .env_remove("MNIST_MIRROR")
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"));
    if let Some(url) = mirror_env {
        command.env("MNIST_MIRROR", url);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The files in the cache (hidden temporary ones included), sorted.
fn cached(home: &Path) -> Vec<String> {
    mirror::entries(&cache(home))
}

#[test]
fn a_fresh_machine_downloads_verifies_trains_and_then_uses_the_cache() {
    let good = Mirror::start(Fault::None);
    let home = home("fresh");
    let output = train(&home, Some(&good.url), &[]);
    let log = stderr(&output);
    assert!(output.status.success(), "train failed: {log}");
    assert!(
        log.contains(&format!(
            "MNIST: downloading 4 of 4 files into {}\n",
            cache(&home).display()
        )),
        "{log}"
    );
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        assert!(
            log.contains(&format!("{name} ("))
                && log.contains(&format!("from {}{name}: SHA-256 verified\n", good.url)),
            "{name}: {log}"
        );
    }
    assert!(
        log.contains(&format!(
            "MNIST: all 4 files in {} (",
            cache(&home).display()
        )),
        "{log}"
    );
    assert_eq!(
        cached(&home),
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    assert!(home.join("run/model.mpk").is_file());
    assert_eq!(good.requests(), 4);

    // The second run finds the cache: no request, no download output.
    let again = train(&home, Some(&good.url), &["--overwrite"]);
    assert!(
        again.status.success(),
        "second run failed: {}",
        stderr(&again)
    );
    assert_eq!(good.requests(), 4);
    assert!(!stderr(&again).contains("MNIST:"), "{}", stderr(&again));
}

#[test]
fn offline_without_data_says_what_was_tried_and_how_to_point_at_a_directory() {
    let home = home("offline");
    let output = train(&home, None, &["--offline"]);
    let log = stderr(&output);
    assert!(!output.status.success());
    assert!(
        log.contains(&format!(
            "MNIST not found: looked in MNIST_DIR (unset), the cache {}",
            cache(&home).display()
        )) && log.contains("Point --data-dir DIR or MNIST_DIR=DIR at a directory"),
        "{log}"
    );
    // Nothing starts: the error comes before the "training on" line.
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(cached(&home), Vec::<String>::new());
    assert!(!home.join("run").exists());
}

#[test]
fn an_unreachable_mirror_is_one_clear_error_and_the_flag_wins_over_the_variable() {
    let good = Mirror::start(Fault::None);
    let refused = refused_url();
    let home = home("unreachable");
    let output = train(&home, Some(&good.url), &["--mirror", &refused]);
    let log = stderr(&output);
    assert!(!output.status.success());
    assert_eq!(good.requests(), 0, "MNIST_MIRROR was used despite --mirror");
    assert!(
        log.contains(&format!(
            "error: could not download MNIST into {}: cannot fetch {refused}train-images-idx3-ubyte.gz",
            cache(&home).display()
        )) && log.contains("--mirror URL or MNIST_MIRROR=URL"),
        "{log}"
    );
    assert_eq!(cached(&home), Vec::<String>::new());
    assert!(!home.join("run").exists());
}
