//! Loading MNIST splits from tiny IDX files written by the tests, good and bad.

use std::path::{Path, PathBuf};

use burn::data::dataset::Dataset;
use data::{MnistDataset, MnistError, MnistFiles, SourceError, Split};

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = std::iter::once(magic)
        .chain(dims.iter().copied())
        .flat_map(u32::to_be_bytes)
        .collect();
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("data-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a complete tiny MNIST (3 train, 2 test images of 2x2) into `dir`; gzip for the train files.
fn write_tiny_mnist(dir: &Path) {
    let train_pixels: Vec<u8> = (0..12).collect();
    std::fs::write(
        dir.join("train-images-idx3-ubyte.gz"),
        gzip(&idx(0x803, &[3, 2, 2], &train_pixels)),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        gzip(&idx(0x801, &[3], &[5, 0, 4])),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx(0x803, &[2, 2, 2], &[255; 8]),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        idx(0x801, &[2], &[7, 2]),
    )
    .unwrap();
}

#[test]
fn tiny_mnist_loads_from_raw_and_gzip_files() {
    let dir = tempdir("tiny");
    write_tiny_mnist(&dir);
    let files = MnistFiles::in_dir(&dir).unwrap();
    assert!(files.train_images.ends_with("train-images-idx3-ubyte.gz"));
    assert!(files.test_images.ends_with("t10k-images-idx3-ubyte"));
    let train = files.load(Split::Train).unwrap();
    assert_eq!((train.len(), train.rows(), train.cols()), (3, 2, 2));
    let second = train.get(1).unwrap();
    assert_eq!(second.pixels, vec![4, 5, 6, 7]);
    assert_eq!(second.label, 0);
    assert!(train.get(3).is_none());
    let test = files.load(Split::Test).unwrap();
    assert_eq!(test.label(1), Some(2));
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tempdir("count");
    let images = dir.join("images");
    let labels = dir.join("labels");
    std::fs::write(&images, idx(0x803, &[2, 1, 1], &[1, 2])).unwrap();
    std::fs::write(&labels, idx(0x801, &[3], &[1, 2, 3])).unwrap();
    let err = MnistDataset::load(&images, &labels, 10).unwrap_err();
    assert!(
        matches!(
            err,
            MnistError::CountMismatch {
                image_count: 2,
                label_count: 3,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("images") && text.contains("labels"), "{text}");
}

#[test]
fn label_out_of_range_is_reported_with_its_index() {
    let dir = tempdir("label");
    let images = dir.join("images");
    let labels = dir.join("labels");
    std::fs::write(&images, idx(0x803, &[3, 1, 1], &[1, 2, 3])).unwrap();
    std::fs::write(&labels, idx(0x801, &[3], &[1, 10, 3])).unwrap();
    let err = MnistDataset::load(&images, &labels, 10).unwrap_err();
    assert!(
        matches!(
            err,
            MnistError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_magic_surfaces_through_the_dataset_loader() {
    let dir = tempdir("magic");
    write_tiny_mnist(&dir);
    // Swap: a label file where the images should be.
    std::fs::copy(
        dir.join("t10k-labels-idx1-ubyte"),
        dir.join("t10k-images-idx3-ubyte"),
    )
    .unwrap();
    let err = MnistFiles::in_dir(&dir)
        .unwrap()
        .load(Split::Test)
        .unwrap_err();
    assert!(err.to_string().contains("magic number"), "{err}");
    assert!(err.to_string().contains("t10k-images-idx3-ubyte"), "{err}");
}

#[test]
fn missing_file_names_the_file_and_directory() {
    let dir = tempdir("missing");
    write_tiny_mnist(&dir);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let err = MnistFiles::in_dir(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::MissingFile {
                name: "t10k-labels-idx1-ubyte",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(dir.to_str().unwrap()), "{err}");
}

#[test]
fn a_directory_where_a_file_should_be_is_named_as_such() {
    let dir = tempdir("dir-not-file");
    write_tiny_mnist(&dir);
    std::fs::remove_file(dir.join("train-images-idx3-ubyte.gz")).unwrap();
    let file = dir.join("train-images-idx3-ubyte");
    std::fs::create_dir(&file).unwrap();
    let err = MnistFiles::in_dir(&dir).unwrap_err();
    assert!(
        matches!(err, SourceError::NotAFile { .. }) && err.to_string().contains("not a file"),
        "{err}"
    );
    assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
}

#[test]
fn explicit_directory_that_does_not_exist_is_an_error() {
    let err = MnistFiles::locate(Some(Path::new("/no/such/mnist"))).unwrap_err();
    assert!(matches!(err, SourceError::NotADirectory { .. }), "{err}");
    assert!(err.to_string().contains("/no/such/mnist"), "{err}");
}

#[test]
fn explicit_directory_wins() {
    let dir = tempdir("explicit");
    write_tiny_mnist(&dir);
    assert_eq!(
        MnistFiles::locate(Some(&dir)).unwrap(),
        MnistFiles::in_dir(&dir).unwrap()
    );
}
