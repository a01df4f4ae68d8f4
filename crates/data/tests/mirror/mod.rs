//! A tiny HTTP mirror of MNIST on 127.0.0.1 for the download tests: it serves the real files (found
//! where the tests find real MNIST: MNIST_DIR, else the cache), gzipped, optionally spoilt, and counts
//! requests. Nothing here reaches beyond the loopback interface. Shared by the tests of `data` and
//! `train` (through `#[path]`), each of which uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use data::MnistFiles;

/// What the mirror does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the original files.
    None,
    /// A valid gzip file whose content differs from the original in one byte.
    Corrupt,
    /// Announces the full length, sends half of it, and closes the connection.
    Truncate,
    /// Answers 404 to everything.
    NotFound,
}

/// A running mirror; its thread lives as long as the test process.
pub struct Mirror {
    /// The base URL, `http://127.0.0.1:PORT/`.
    pub url: String,
    requests: Arc<AtomicUsize>,
}

impl Mirror {
    /// Starts a mirror with `fault` on a free loopback port.
    pub fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || answer(stream, fault));
            }
        });
        Self { url, requests }
    }

    /// Connections accepted so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A base URL on which nothing listens: connections are refused.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

/// The four real files, gzipped, by `.gz` name (read once per test process).
fn originals() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let files = MnistFiles::locate(None)
            .unwrap_or_else(|e| panic!("the download tests serve real MNIST: {e}"));
        files
            .all()
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).unwrap();
                let name = path.file_name().unwrap().to_string_lossy();
                match name.strip_suffix(".gz") {
                    Some(_) => (name.to_string(), bytes),
                    None => (format!("{name}.gz"), gzip(&bytes)),
                }
            })
            .collect()
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn answer(mut stream: TcpStream, fault: Fault) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The rest of the request head, up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/');
    let file = originals().iter().find(|(file, _)| file == name);
    let (Some((_, body)), false) = (file, fault == Fault::NotFound) else {
        let _ = stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    let body = match fault {
        Fault::Corrupt => {
            let mut content = gunzip(body);
            let middle = content.len() / 2;
            content[middle] ^= 0xff;
            gzip(&content)
        }
        _ => body.clone(),
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let sent = match fault {
        Fault::Truncate => &body[..body.len() / 2],
        _ => &body[..],
    };
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(sent));
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Every entry of `dir` (hidden temporary files included), sorted; none when it does not exist.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
