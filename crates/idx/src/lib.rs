//! The IDX file format of the MNIST distribution: a big-endian header (magic, then one u32 per
//! dimension) followed by the unsigned bytes, optionally gzip-compressed.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Why an IDX file could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path} is a corrupt gzip stream ({cause}); download the file again")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        cause: std::io::Error,
    },
    /// The file is shorter than its header.
    #[error(
        "{path} is too short for an IDX header ({len} bytes, need at least {needed}); the file is truncated or not IDX"
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Bytes available.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The magic number is not the one expected.
    #[error(
        "{path} has magic number {found:#010x}, expected {expected:#010x} ({what}); is this the right file?"
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number read.
        found: u32,
        /// The magic number wanted.
        expected: u32,
        /// What the expected magic stands for.
        what: &'static str,
    },
    /// The header's sizes do not match the data that follows.
    #[error(
        "{path}: header announces {expected} data bytes ({dims:?}) but the file holds {actual}; the file is truncated or corrupt"
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Dimensions from the header.
        dims: Vec<usize>,
        /// Data bytes the header implies.
        expected: usize,
        /// Data bytes present.
        actual: usize,
    },
}

/// Images from an IDX3 file: `count` images of `rows × cols` bytes, row-major, contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixel bytes.
    pub pixels: Vec<u8>,
}

/// Reads an IDX3 image file (raw or gzip, detected from the content).
pub fn read_images(path: &Path) -> Result<IdxImages, IdxError> {
    images_from_bytes(&read_file(path)?, path)
}

/// Reads an IDX1 label file (raw or gzip, detected from the content).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    labels_from_bytes(&read_file(path)?, path)
}

/// Parses the bytes of an IDX3 image file (raw or gzip); `source` only names them in errors.
pub fn images_from_bytes(bytes: &[u8], source: &Path) -> Result<IdxImages, IdxError> {
    let bytes = gunzip_if_compressed(bytes, source)?;
    let (dims, data) = parse(
        source,
        &bytes,
        IMAGES_MAGIC,
        3,
        "unsigned bytes, 3 dimensions: images",
    )?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: data.to_vec(),
    })
}

/// Parses the bytes of an IDX1 label file (raw or gzip); `source` only names them in errors.
pub fn labels_from_bytes(bytes: &[u8], source: &Path) -> Result<Vec<u8>, IdxError> {
    let bytes = gunzip_if_compressed(bytes, source)?;
    let (_, data) = parse(
        source,
        &bytes,
        LABELS_MAGIC,
        1,
        "unsigned bytes, 1 dimension: labels",
    )?;
    Ok(data.to_vec())
}

/// Reads the whole file, decompressing it when it starts with the gzip magic bytes.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, IdxError> {
    Ok(gunzip_if_compressed(&read_file(path)?, path)?.into_owned())
}

fn read_file(path: &Path) -> Result<Vec<u8>, IdxError> {
    std::fs::read(path).map_err(|cause| IdxError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// The bytes themselves, or their decompression when they start with the gzip magic bytes.
fn gunzip_if_compressed<'a>(raw: &'a [u8], source: &Path) -> Result<Cow<'a, [u8]>, IdxError> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw)
        .read_to_end(&mut out)
        .map_err(|cause| IdxError::Gzip {
            path: source.to_path_buf(),
            cause,
        })?;
    Ok(Cow::Owned(out))
}

/// Splits `bytes` into header dimensions and data, checking magic and sizes.
fn parse<'a>(
    path: &Path,
    bytes: &'a [u8],
    magic: u32,
    rank: usize,
    what: &'static str,
) -> Result<(Vec<usize>, &'a [u8]), IdxError> {
    let header = 4 * (1 + rank);
    if bytes.len() < 4 {
        return Err(IdxError::TooShort {
            path: path.to_path_buf(),
            len: bytes.len(),
            needed: header,
        });
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    };
    let found = word(0);
    if found != magic {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    if bytes.len() < header {
        return Err(IdxError::TooShort {
            path: path.to_path_buf(),
            len: bytes.len(),
            needed: header,
        });
    }
    let dims: Vec<usize> = (1..=rank).map(|i| word(i) as usize).collect();
    let data = &bytes[header..];
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(data.len()) {
        return Err(IdxError::SizeMismatch {
            path: path.to_path_buf(),
            expected: expected.unwrap_or(usize::MAX),
            dims,
            actual: data.len(),
        });
    }
    Ok((dims, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        std::iter::once(magic)
            .chain(dims.iter().copied())
            .flat_map(u32::to_be_bytes)
            .collect()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("idx-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_raw_and_gzip_images_identically() {
        let dir = tempdir("images");
        let mut bytes = header(IMAGES_MAGIC, &[2, 2, 3]);
        bytes.extend(0..12u8);
        let raw = read_images(&write(&dir, "raw", &bytes)).unwrap();
        let gz = read_images(&write(&dir, "gz", &gzip(&bytes))).unwrap();
        assert_eq!(raw, gz);
        assert_eq!((raw.count, raw.rows, raw.cols), (2, 2, 3));
        assert_eq!(raw.pixels, (0..12).collect::<Vec<u8>>());
    }

    #[test]
    fn reads_labels() {
        let dir = tempdir("labels");
        let mut bytes = header(LABELS_MAGIC, &[4]);
        bytes.extend([5, 0, 4, 1]);
        assert_eq!(
            read_labels(&write(&dir, "l", &bytes)).unwrap(),
            vec![5, 0, 4, 1]
        );
    }

    #[test]
    fn rejects_bad_magic_naming_the_file() {
        let dir = tempdir("magic");
        let mut bytes = header(LABELS_MAGIC, &[1]);
        bytes.push(3);
        let path = write(&dir, "labels-as-images", &bytes);
        let err = read_images(&path).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::BadMagic {
                    found: LABELS_MAGIC,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("labels-as-images"), "{err}");
    }

    #[test]
    fn rejects_truncated_data_and_header() {
        let dir = tempdir("trunc");
        let mut bytes = header(IMAGES_MAGIC, &[2, 2, 2]);
        bytes.extend([0; 7]);
        let err = read_images(&write(&dir, "short-data", &bytes)).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::SizeMismatch {
                    expected: 8,
                    actual: 7,
                    ..
                }
            ),
            "{err}"
        );
        let err = read_images(&write(&dir, "short-header", &bytes[..10])).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::TooShort {
                    len: 10,
                    needed: 16,
                    ..
                }
            ),
            "{err}"
        );
        let err = read_labels(&write(&dir, "empty", &[])).unwrap_err();
        assert!(matches!(err, IdxError::TooShort { len: 0, .. }), "{err}");
    }

    #[test]
    fn rejects_trailing_bytes() {
        let dir = tempdir("trailing");
        let mut bytes = header(LABELS_MAGIC, &[2]);
        bytes.extend([1, 2, 3]);
        let err = read_labels(&write(&dir, "long", &bytes)).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::SizeMismatch {
                    expected: 2,
                    actual: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_wrong_number_of_dimensions() {
        // A 2-dimensional file with the images type code: magic 0x0802 is not the images magic.
        let dir = tempdir("dims");
        let mut bytes = header(0x0000_0802, &[2, 4]);
        bytes.extend([0; 8]);
        let err = read_images(&write(&dir, "two-dims", &bytes)).unwrap_err();
        assert!(
            matches!(err, IdxError::BadMagic { found: 0x0802, .. }),
            "{err}"
        );
    }

    #[test]
    fn rejects_huge_header_sizes_without_overflow() {
        let dir = tempdir("huge");
        let bytes = header(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX]);
        let err = read_images(&write(&dir, "huge", &bytes)).unwrap_err();
        assert!(matches!(err, IdxError::SizeMismatch { .. }), "{err}");
    }

    #[test]
    fn rejects_corrupt_gzip() {
        let dir = tempdir("gzip");
        let mut bytes = header(LABELS_MAGIC, &[64]);
        bytes.extend([7; 64]);
        let mut gz = gzip(&bytes);
        let n = gz.len();
        gz.truncate(n - 12);
        let err = read_labels(&write(&dir, "corrupt.gz", &gz)).unwrap_err();
        assert!(matches!(err, IdxError::Gzip { .. }), "{err}");
        assert!(err.to_string().contains("corrupt.gz"), "{err}");
    }

    #[test]
    fn missing_file_and_directory_are_io_errors() {
        let dir = tempdir("missing");
        let err = read_labels(&dir.join("nope")).unwrap_err();
        assert!(
            matches!(err, IdxError::Io { .. }) && err.to_string().contains("nope"),
            "{err}"
        );
        let err = read_labels(&dir).unwrap_err();
        assert!(matches!(err, IdxError::Io { .. }), "{err}");
    }
}
