//! The four MNIST files: their canonical names and the SHA-256 of each original, in one place for the
//! lookup ([`crate::MnistFiles`]) and the download that fills the cache.

/// Canonical names of the four files (each may also be present with a `.gz` suffix).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The four files (canonical names, without `.gz`) and the SHA-256 of each original, uncompressed.
/// Checking the content rather than the `.gz` bytes accepts any mirror's compression.
pub const DIGESTS: [(&str, &str); 4] = [
    (
        TRAIN_IMAGES,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        TRAIN_LABELS,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        TEST_IMAGES,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        TEST_LABELS,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];
