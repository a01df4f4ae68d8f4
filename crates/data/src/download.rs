//! Fetching MNIST when it is nowhere on disk: the four gzipped IDX files, from a list of mirrors tried
//! in order, each checked against the SHA-256 of the original file's uncompressed content and stored
//! atomically (temporary file, fsync, rename), so that nothing unverified ever carries a final name.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::files::DIGESTS;

/// Environment variable naming the mirror(s) to download from instead of the default ones
/// (base URLs separated by whitespace).
pub const MNIST_MIRROR_ENV: &str = "MNIST_MIRROR";

/// The mirrors torchvision downloads MNIST from, in its order.
pub const DEFAULT_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

/// A temporary file not written to for this long belongs to a download that died (every read of an
/// active one has a shorter timeout), and is removed.
const STALE_AFTER: Duration = Duration::from_secs(300);
/// Suffix of the temporary files, which no lookup ever takes for data.
const PARTIAL_SUFFIX: &str = ".partial";

/// Why one file could not be fetched from one mirror, or stored.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// A mirror that is not an `http://` or `https://` URL.
    #[error(
        "{url:?} (from {origin}) is not a mirror URL: give the http:// or https:// base URL under which the four .gz files lie"
    )]
    BadMirror {
        /// The value given.
        url: String,
        /// Where it came from: `--mirror` or `MNIST_MIRROR`.
        origin: String,
    },
    /// The server answered with an error status (404: the mirror does not have the file).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The file's URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// No answer, or the transfer broke off: connection refused, unknown host, TLS, timeout, a body
    /// shorter than announced.
    #[error("cannot fetch {url}: {cause}")]
    Transfer {
        /// The file's URL.
        url: String,
        /// What went wrong, in the HTTP client's words.
        cause: String,
    },
    /// What arrived is not a complete gzip stream (a truncated or non-gzip file).
    #[error(
        "{url} is not a complete gzip file ({cause}); the download was cut short or the mirror serves something else"
    )]
    Gzip {
        /// The file's URL.
        url: String,
        /// The decoder's error.
        cause: io::Error,
    },
    /// The uncompressed content is not the original file.
    #[error(
        "{file} from mirror {mirror} is not the original MNIST file: its uncompressed SHA-256 is {actual}, expected {expected}; the file was not kept"
    )]
    Digest {
        /// The canonical file name.
        file: &'static str,
        /// The mirror's base URL.
        mirror: String,
        /// The digest of the original.
        expected: &'static str,
        /// The digest of what arrived.
        actual: String,
    },
    /// The cache directory could not be written.
    #[error(
        "cannot write {path}: {cause}; make the directory writable or point MNIST_DIR at the files"
    )]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        cause: io::Error,
    },
}

/// The mirrors to try, in order: base URLs under which `train-images-idx3-ubyte.gz` and the three
/// other files lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors(Vec<String>);

impl Default for Mirrors {
    /// torchvision's mirrors.
    fn default() -> Self {
        Self(DEFAULT_MIRRORS.map(String::from).to_vec())
    }
}

impl Mirrors {
    /// The given base URLs, in order; an error names one that is not `http(s)://`.
    pub fn new(
        urls: impl IntoIterator<Item = String>,
        origin: &str,
    ) -> Result<Self, DownloadError> {
        let urls: Vec<String> = urls.into_iter().collect();
        if let Some(bad) = urls.iter().find(|url| {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            rest.is_none_or(|host| host.is_empty() || host.starts_with('/'))
        }) {
            return Err(DownloadError::BadMirror {
                url: bad.clone(),
                origin: origin.to_string(),
            });
        }
        if urls.is_empty() {
            return Ok(Self::default());
        }
        Ok(Self(urls))
    }

    /// What the user asked for: `cli` (the `--mirror` flags) if any, else `MNIST_MIRROR` if set and not
    /// empty, else the default mirrors.
    pub fn from_cli_or_env(cli: Vec<String>) -> Result<Self, DownloadError> {
        if !cli.is_empty() {
            return Self::new(cli, "--mirror");
        }
        match std::env::var(MNIST_MIRROR_ENV) {
            Ok(value) => Self::new(value.split_whitespace().map(String::from), MNIST_MIRROR_ENV),
            Err(_) => Ok(Self::default()),
        }
    }

    /// The base URLs, in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.0
    }
}

/// What a download is doing, for a progress display.
#[derive(Debug)]
pub enum Event<'a> {
    /// Downloading starts: `missing` files are fetched into `cache`.
    Begin {
        /// The directory the files go to.
        cache: &'a Path,
        /// How many of the four are missing there.
        missing: usize,
    },
    /// One file's transfer starts; `size` is what the server announced.
    Start {
        /// The file name, `.gz` included.
        file: &'a str,
        /// Where it comes from.
        url: &'a str,
        /// Its length in bytes, when the server says.
        size: Option<u64>,
    },
    /// More of it arrived.
    Received {
        /// Bytes received so far of this file.
        bytes: u64,
    },
    /// The file was verified and stored under its final name.
    Stored {
        /// The file name, `.gz` included.
        file: &'a str,
        /// Where it came from.
        url: &'a str,
        /// Its size in bytes (compressed, as stored).
        bytes: u64,
    },
    /// This mirror failed for this file (nothing was kept); the next one, if any, is tried.
    Failed {
        /// The file name, `.gz` included.
        file: &'a str,
        /// Why.
        error: &'a DownloadError,
    },
    /// All four files are in `cache`.
    Done {
        /// The directory that holds them.
        cache: &'a Path,
        /// Bytes downloaded in all.
        bytes: u64,
    },
}

/// Receives a download's [`Event`]s: a progress bar, log lines, or nothing.
pub trait Progress {
    /// Called for each event, in order.
    fn event(&mut self, event: Event<'_>);
}

/// No progress output.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn event(&mut self, _: Event<'_>) {}
}

/// One plain line per file, plus one at the start and one at the end (for logs and non-terminals).
#[derive(Debug)]
pub struct LineProgress<W: Write>(pub W);

impl<W: Write> Progress for LineProgress<W> {
    fn event(&mut self, event: Event<'_>) {
        // Progress lines are informative only: a closed stream must not stop the download.
        let _ = match event {
            Event::Begin { cache, missing } => writeln!(
                self.0,
                "MNIST: downloading {missing} of 4 files into {}",
                cache.display()
            ),
            Event::Stored { file, url, bytes } => writeln!(
                self.0,
                "MNIST: {file} ({}) from {url}: SHA-256 verified",
                format_size(bytes)
            ),
            Event::Failed { file, error } => {
                writeln!(self.0, "MNIST: {file} failed: {error}")
            }
            Event::Done { cache, bytes } => writeln!(
                self.0,
                "MNIST: all 4 files in {} ({} downloaded)",
                cache.display(),
                format_size(bytes)
            ),
            Event::Start { .. } | Event::Received { .. } => Ok(()),
        };
    }
}

/// A size for people: `9.7 MB`, `28.9 kB`, `512 B`.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// Downloads into `dir` every file of the four that it lacks (raw or `.gz`), trying `mirrors` in
/// order for each; files already there are kept. On failure, the errors of every mirror tried for the
/// file that could not be fetched.
pub(crate) fn fetch_missing(
    dir: &Path,
    mirrors: &Mirrors,
    progress: &mut dyn Progress,
) -> Result<(), Vec<DownloadError>> {
    let missing: Vec<(&'static str, &'static str)> = DIGESTS
        .into_iter()
        .filter(|(name, _)| !(dir.join(name).is_file() || dir.join(gz(name)).is_file()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|cause| vec![io_error(dir, cause)])?;
    remove_stale_partials(dir);
    progress.event(Event::Begin {
        cache: dir,
        missing: missing.len(),
    });
    let agent = agent();
    let mut total = 0;
    for (name, digest) in missing {
        let mut errors = Vec::new();
        let mut stored = false;
        for mirror in mirrors.urls() {
            match fetch_one(&agent, mirror, name, digest, dir, progress) {
                Ok(bytes) => {
                    total += bytes;
                    stored = true;
                    break;
                }
                Err(error) => {
                    progress.event(Event::Failed {
                        file: &gz(name),
                        error: &error,
                    });
                    // A full disk or an unwritable cache fails the same on every mirror.
                    let fatal = matches!(error, DownloadError::Io { .. });
                    errors.push(error);
                    if fatal {
                        break;
                    }
                }
            }
        }
        if !stored {
            return Err(errors);
        }
    }
    progress.event(Event::Done {
        cache: dir,
        bytes: total,
    });
    Ok(())
}

fn gz(name: &str) -> String {
    format!("{name}.gz")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("lstm-mnist/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Fetches `name.gz` from one mirror into `dir`, verified; returns its size.
fn fetch_one(
    agent: &ureq::Agent,
    mirror: &str,
    name: &'static str,
    digest: &'static str,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<u64, DownloadError> {
    let file_name = gz(name);
    let url = format!("{}/{file_name}", mirror.trim_end_matches('/'));
    let transfer = |cause: String| DownloadError::Transfer {
        url: url.clone(),
        cause,
    };
    let mut response = agent.get(&url).call().map_err(|error| match error {
        ureq::Error::StatusCode(status) => DownloadError::Status {
            url: url.clone(),
            status,
        },
        other => transfer(other.to_string()),
    })?;
    progress.event(Event::Start {
        file: &file_name,
        url: &url,
        size: response.body().content_length(),
    });
    let mut partial = Partial::create(dir, &file_name)?;
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0; 1 << 16];
    let mut bytes = 0;
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|error| transfer(error.to_string()))?;
        if n == 0 {
            break;
        }
        partial.write(&buffer[..n])?;
        bytes += n as u64;
        progress.event(Event::Received { bytes });
    }
    let actual = partial.uncompressed_sha256().map_err(|error| match error {
        Unpack::Gzip(cause) => DownloadError::Gzip {
            url: url.clone(),
            cause,
        },
        Unpack::Io(error) => error,
    })?;
    if actual != digest {
        return Err(DownloadError::Digest {
            file: name,
            mirror: mirror.to_string(),
            expected: digest,
            actual,
        });
    }
    partial.persist(&dir.join(&file_name))?;
    progress.event(Event::Stored {
        file: &file_name,
        url: &url,
        bytes,
    });
    Ok(bytes)
}

/// A download in progress: a temporary file beside its final name, removed unless persisted.
struct Partial {
    path: PathBuf,
    /// Open until persisted; closed before the path is removed or renamed.
    file: Option<File>,
}

enum Unpack {
    Gzip(io::Error),
    Io(DownloadError),
}

impl Partial {
    fn create(dir: &Path, file_name: &str) -> Result<Self, DownloadError> {
        let path = dir.join(format!(
            ".{file_name}.{}{PARTIAL_SUFFIX}",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|cause| io_error(&path, cause))?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    fn open(&self) -> &File {
        self.file
            .as_ref()
            .expect("a partial file stays open until persisted")
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), DownloadError> {
        let mut file = self.open();
        file.write_all(bytes)
            .map_err(|cause| io_error(&self.path, cause))
    }

    /// The SHA-256 of the gzip content written so far, in hex.
    fn uncompressed_sha256(&self) -> Result<String, Unpack> {
        let mut file = self.open();
        file.rewind()
            .map_err(|cause| Unpack::Io(io_error(&self.path, cause)))?;
        let mut hasher = Sha256::new();
        io::copy(&mut GzDecoder::new(BufReader::new(file)), &mut hasher).map_err(Unpack::Gzip)?;
        Ok(hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect())
    }

    /// Flushes the file to disk and renames it to `target`, then syncs the directory.
    fn persist(mut self, target: &Path) -> Result<(), DownloadError> {
        self.open()
            .sync_all()
            .map_err(|cause| io_error(&self.path, cause))?;
        self.file = None;
        let renamed = std::fs::rename(&self.path, target);
        if let Err(cause) = renamed {
            let _ = std::fs::remove_file(&self.path);
            return Err(io_error(target, cause));
        }
        sync_dir(target.parent().unwrap_or(Path::new(".")));
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Still open: not persisted, so the download failed or was abandoned.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_error(path: &Path, cause: io::Error) -> DownloadError {
    DownloadError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Makes a rename durable; best effort (not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Removes temporary files left by downloads that were killed (not written to for [`STALE_AFTER`]).
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX)) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| {
                now.duration_since(modified)
                    .is_ok_and(|age| age > STALE_AFTER)
            });
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
