//! Any bytes given to the IDX reader (raw or gzip) give images, labels or an error: never a panic or an
//! overflow.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz-input");
    if let Ok(images) = idx::images_from_bytes(bytes, path) {
        assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
    }
    let _ = idx::labels_from_bytes(bytes, path);
});
