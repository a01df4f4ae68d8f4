//! Starting `infer serve` for a test: on a free loopback port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root, where `artifacts/reference` is.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `infer` with `args` to completion from the repository root.
#[allow(dead_code)]
pub fn infer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infer"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// A running `infer serve`.
pub struct Server {
    child: Child,
    /// Where it listens, e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl Server {
    /// Starts `infer serve --port 0 ARGS…` and waits for the address it prints.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_infer"))
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    if let Some(start) = line.find("http://") {
                        let url = line[start..]
                            .split_whitespace()
                            .next()
                            .unwrap()
                            .trim_end_matches('/')
                            .to_string();
                        return Self { child, url };
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!(
                        "infer serve printed no address ({e}); exit: {:?}",
                        child.wait()
                    );
                }
            }
        }
    }

    /// Sends SIGTERM and waits for the exit.
    #[allow(dead_code)]
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
