//! `.ts` files written by aeon 1.6's own writer (`tests/fixtures/make_aeon_fixtures.py`): its header
//! spellings (`@dimension`, `@missing False`, `@timestamps false`), equal and unequal lengths, one and
//! several channels, string labels.

use std::path::PathBuf;

use data::TsDataset;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/aeon")
        .join(name)
}

#[test]
fn aeons_multivariate_equal_length_files_read() {
    for (file, examples) in [("Toy_TRAIN.ts", 12), ("Toy_TEST.ts", 6)] {
        let set = TsDataset::read(fixture(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.dimensions, 3, "{file}");
        assert_eq!(set.classes, ["down", "flat", "up"], "{file}");
        assert_eq!(set.examples.len(), examples, "{file}");
        assert!(set.examples.iter().all(|e| e.values.len() == 30), "{file}");
    }
}

#[test]
fn aeons_univariate_unequal_length_files_read() {
    let set = TsDataset::read(fixture("Uneq_TRAIN.ts")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.dimensions, 1);
    assert_eq!(set.classes, ["a", "b"]);
    let lengths: Vec<usize> = set.examples.iter().map(|e| e.values.len()).collect();
    assert_eq!(lengths, [5, 6, 7, 8, 9, 5, 6, 7]);
}
