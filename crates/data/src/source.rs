//! Where the MNIST files are found: an explicit directory, `MNIST_DIR`, then the cache (this project's,
//! then burn-dataset's); [`MnistFiles::locate_or_download`] fetches them into the cache when they are
//! nowhere.

use std::path::{Path, PathBuf};

use crate::download::{self, DownloadError, Mirrors, Progress};
use crate::files::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::mnist::{MnistDataset, MnistError};

/// Environment variable naming a directory that holds the four MNIST files.
pub const MNIST_DIR_ENV: &str = "MNIST_DIR";

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60 000 training images.
    Train,
    /// The 10 000 test images.
    Test,
}

/// Why the MNIST files could not be found.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A directory was named but lacks a file.
    #[error("{dir} does not hold {name} (nor {name}.gz){hint}")]
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The canonical file name.
        name: &'static str,
        /// Where the directory came from, and what to do.
        hint: String,
    },
    /// Something other than a file sits where an IDX file should be.
    #[error(
        "{path} is not a file (a directory?); the IDX file {name} must be a regular file{hint}"
    )]
    NotAFile {
        /// The offending path.
        path: PathBuf,
        /// The canonical file name.
        name: &'static str,
        /// Where the directory came from, and what to do.
        hint: String,
    },
    /// A named directory does not exist or is not a directory.
    #[error("{dir} is not a directory{hint}")]
    NotADirectory {
        /// The path given.
        dir: PathBuf,
        /// Where the path came from, and what to do.
        hint: String,
    },
    /// Nothing was named and nothing was found.
    #[error(
        "MNIST not found: looked in {looked}. Point --data-dir DIR or {MNIST_DIR_ENV}=DIR at a directory holding the four IDX files ({TRAIN_IMAGES}[.gz], {TRAIN_LABELS}[.gz], {TEST_IMAGES}[.gz], {TEST_LABELS}[.gz]), or run `cargo run --release -p train` once (without --offline): it downloads them into {cache}"
    )]
    NotFound {
        /// Every place tried.
        looked: String,
        /// Where a download puts the files.
        cache: String,
    },
    /// The platform has no cache directory to download into.
    #[error(
        "MNIST not found ({looked}) and there is no cache directory to download it into (is HOME set?); point --data-dir DIR or {MNIST_DIR_ENV}=DIR at a directory holding the four IDX files"
    )]
    NoCache {
        /// Every place tried.
        looked: String,
    },
    /// Every mirror failed for one of the files.
    #[error(
        "could not download MNIST into {}: {}. Check the network, name a reachable mirror with --mirror URL or {}=URL (a base URL under which the four .gz files lie), or point --data-dir DIR or {MNIST_DIR_ENV}=DIR at a directory holding the four IDX files",
        cache.display(),
        tried.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        download::MNIST_MIRROR_ENV
    )]
    Download {
        /// The directory the files were to go to.
        cache: PathBuf,
        /// What went wrong with each mirror tried, in order.
        tried: Vec<DownloadError>,
    },
}

/// The four MNIST files, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistFiles {
    /// Training images.
    pub train_images: PathBuf,
    /// Training labels.
    pub train_labels: PathBuf,
    /// Test images.
    pub test_images: PathBuf,
    /// Test labels.
    pub test_labels: PathBuf,
}

impl MnistFiles {
    /// Finds the files in `dir` (raw or `.gz` names). An error names the first missing one.
    pub fn in_dir(dir: &Path) -> Result<Self, SourceError> {
        Self::in_dirs(dir, dir, "")
    }

    /// Finds the files, in this order: `explicit` (a config field or flag), the `MNIST_DIR` environment
    /// variable, the cache ([`cache_dir`](Self::cache_dir)), burn-dataset's cache. Never touches the
    /// network: when they are nowhere, the error says how to get them.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, SourceError> {
        match Self::lookup(explicit)? {
            Lookup::Found(files) => Ok(files),
            Lookup::Missing { looked } => Err(match Self::cache_dir() {
                Some(cache) => SourceError::NotFound {
                    looked,
                    cache: cache.display().to_string(),
                },
                None => SourceError::NoCache { looked },
            }),
        }
    }

    /// Finds the files like [`locate`](Self::locate); when they are nowhere, downloads the missing ones
    /// into [`cache_dir`](Self::cache_dir) from `mirrors`, verified, reporting to `progress`.
    pub fn locate_or_download(
        explicit: Option<&Path>,
        mirrors: &Mirrors,
        progress: &mut dyn Progress,
    ) -> Result<Self, SourceError> {
        match Self::lookup(explicit)? {
            Lookup::Found(files) => Ok(files),
            Lookup::Missing { looked } => {
                let cache = Self::cache_dir().ok_or(SourceError::NoCache { looked })?;
                Self::download_into(&cache, mirrors, progress)
            }
        }
    }

    /// Downloads into `dir` those of the four files it lacks (each verified; files already there are
    /// kept), then finds them there.
    pub fn download_into(
        dir: &Path,
        mirrors: &Mirrors,
        progress: &mut dyn Progress,
    ) -> Result<Self, SourceError> {
        download::fetch_missing(dir, mirrors, progress).map_err(|tried| SourceError::Download {
            cache: dir.to_path_buf(),
            tried,
        })?;
        Self::in_dir(dir)
    }

    /// Where downloaded MNIST is kept: `<cache>/lstm-mnist/mnist` (on Linux `$XDG_CACHE_HOME`, else
    /// `~/.cache`), holding the four `.gz` files. `None` on a platform without a cache directory.
    pub fn cache_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|cache| cache.join("lstm-mnist").join("mnist"))
    }

    fn lookup(explicit: Option<&Path>) -> Result<Lookup, SourceError> {
        if let Some(dir) = explicit {
            return Self::in_named_dir(
                dir,
                " (given as the data directory; fix the path or drop it to search elsewhere)",
            )
            .map(Lookup::Found);
        }
        if let Some(dir) = std::env::var_os(MNIST_DIR_ENV).filter(|d| !d.is_empty()) {
            return Self::in_named_dir(
                Path::new(&dir),
                &format!(" (given by {MNIST_DIR_ENV}; fix it or unset it)"),
            )
            .map(Lookup::Found);
        }
        let mut looked = vec![format!("{MNIST_DIR_ENV} (unset)")];
        if let Some(cache) = Self::cache_dir() {
            if let Ok(files) = Self::in_dir(&cache) {
                return Ok(Lookup::Found(files));
            }
            looked.push(format!("the cache {}", cache.display()));
        }
        if let Some(cache) = burn_cache_dir() {
            let (train, test) = (cache.join("train"), cache.join("test"));
            if let Ok(files) = Self::in_dirs(&train, &test, "") {
                return Ok(Lookup::Found(files));
            }
            looked.push(format!("burn-dataset's cache {}", cache.display()));
        }
        Ok(Lookup::Missing {
            looked: looked.join(", "),
        })
    }

    /// Loads one split, checking images against labels.
    pub fn load(&self, split: Split) -> Result<MnistDataset, MnistError> {
        let (images, labels) = match split {
            Split::Train => (&self.train_images, &self.train_labels),
            Split::Test => (&self.test_images, &self.test_labels),
        };
        MnistDataset::load(images, labels, MnistDataset::NUM_CLASSES)
    }

    /// Every file, in the order train images, train labels, test images, test labels.
    pub fn all(&self) -> [&Path; 4] {
        [
            &self.train_images,
            &self.train_labels,
            &self.test_images,
            &self.test_labels,
        ]
    }

    fn in_named_dir(dir: &Path, hint: &str) -> Result<Self, SourceError> {
        if !dir.is_dir() {
            return Err(SourceError::NotADirectory {
                dir: dir.to_path_buf(),
                hint: hint.to_string(),
            });
        }
        Self::in_dirs(dir, dir, hint)
    }

    fn in_dirs(train: &Path, test: &Path, hint: &str) -> Result<Self, SourceError> {
        let find = |dir: &Path, name: &'static str| {
            let candidates = [name.to_string(), format!("{name}.gz")].map(|file| dir.join(file));
            if let Some(path) = candidates.iter().find(|path| path.is_file()) {
                return Ok(path.clone());
            }
            match candidates.into_iter().find(|path| path.exists()) {
                Some(path) => Err(SourceError::NotAFile {
                    path,
                    name,
                    hint: hint.to_string(),
                }),
                None => Err(SourceError::MissingFile {
                    dir: dir.to_path_buf(),
                    name,
                    hint: hint.to_string(),
                }),
            }
        };
        Ok(Self {
            train_images: find(train, TRAIN_IMAGES)?,
            train_labels: find(train, TRAIN_LABELS)?,
            test_images: find(test, TEST_IMAGES)?,
            test_labels: find(test, TEST_LABELS)?,
        })
    }
}

/// The outcome of a lookup that found no error in what was named.
enum Lookup {
    Found(MnistFiles),
    Missing { looked: String },
}

/// burn-dataset keeps downloaded MNIST in `<cache>/burn-dataset/mnist/{train,test}/`; files it
/// downloaded earlier are still used.
fn burn_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|cache| cache.join("burn-dataset").join("mnist"))
}
