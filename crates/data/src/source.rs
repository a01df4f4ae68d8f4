//! Where the MNIST files are found: an explicit directory, `MNIST_DIR`, burn-dataset's cache, or a
//! download (with the `download` feature).

use std::path::{Path, PathBuf};

use crate::mnist::{MnistDataset, MnistError};

/// Environment variable naming a directory that holds the four MNIST files.
pub const MNIST_DIR_ENV: &str = "MNIST_DIR";

/// Canonical names of the four files (each may also be present with a `.gz` suffix).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

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
        "MNIST not found: looked in {looked}. Point to a directory holding the four IDX files ({TRAIN_IMAGES}[.gz], {TRAIN_LABELS}[.gz], {TEST_IMAGES}[.gz], {TEST_LABELS}[.gz]) with --data-dir or {MNIST_DIR_ENV}=DIR{download_hint}"
    )]
    NotFound {
        /// Every place tried.
        looked: String,
        /// How to enable downloading, when it is compiled out.
        download_hint: &'static str,
    },
    /// The download failed.
    #[error("downloading MNIST with burn-dataset failed: {0}")]
    Download(String),
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
    /// variable, burn-dataset's download cache, then (with the `download` feature) a download.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, SourceError> {
        if let Some(dir) = explicit {
            return Self::in_named_dir(
                dir,
                " (given as the data directory; fix the path or drop it to search elsewhere)",
            );
        }
        if let Some(dir) = std::env::var_os(MNIST_DIR_ENV).filter(|d| !d.is_empty()) {
            return Self::in_named_dir(
                Path::new(&dir),
                &format!(" (given by {MNIST_DIR_ENV}; fix it or unset it)"),
            );
        }
        let mut looked = vec![format!("{MNIST_DIR_ENV} (unset)")];
        if let Some(cache) = burn_cache_dir() {
            let (train, test) = (cache.join("train"), cache.join("test"));
            if let Ok(files) = Self::in_dirs(&train, &test, "") {
                return Ok(files);
            }
            looked.push(format!("burn-dataset's cache {}", cache.display()));
        }
        download(looked)
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

/// burn-dataset keeps downloaded MNIST in `<cache>/burn-dataset/mnist/{train,test}/`.
fn burn_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|cache| cache.join("burn-dataset").join("mnist"))
}

#[cfg(feature = "download")]
fn download(_looked: Vec<String>) -> Result<MnistFiles, SourceError> {
    use burn::data::dataset::vision::MnistDataset as BurnMnist;
    // burn-dataset panics when it cannot download; turn that into an error.
    std::panic::catch_unwind(|| {
        BurnMnist::train();
        BurnMnist::test();
    })
    .map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown error".into());
        SourceError::Download(format!(
            "{message}; without network, point --data-dir or {MNIST_DIR_ENV} at the IDX files"
        ))
    })?;
    let cache =
        burn_cache_dir().ok_or_else(|| SourceError::Download("no cache directory".into()))?;
    MnistFiles::in_dirs(&cache.join("train"), &cache.join("test"), "")
}

#[cfg(not(feature = "download"))]
fn download(looked: Vec<String>) -> Result<MnistFiles, SourceError> {
    Err(SourceError::NotFound {
        looked: looked.join(", "),
        download_hint: ", or build with the `download` feature to fetch it",
    })
}
