//! `.ts` files written by sktime 1.2's own writer (`tests/fixtures/make_sktime_fixtures.py`): its header
//! spellings (`@timestamps false`, `@univariate`, no `@dimensions` line, no `@missing` line even where
//! values are missing), equal and unequal lengths, one and two channels, string labels, and `?` gaps.

use std::path::PathBuf;

use data::{MissingValues, TsDataset, TsError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/sktime")
        .join(name)
}

#[test]
fn sktimes_multivariate_equal_length_files_read() {
    for (file, examples) in [("Wave/Wave_TRAIN.ts", 10), ("Wave/Wave_TEST.ts", 4)] {
        let set = TsDataset::read(fixture(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.problem.as_deref(), Some("Wave"), "{file}");
        assert_eq!(set.dimensions, 2, "{file}");
        assert_eq!(set.classes, ["low", "high"], "{file}");
        assert_eq!(set.examples.len(), examples, "{file}");
        assert!(set.examples.iter().all(|e| e.length == 12), "{file}");
        // The first data line is line 8, after seven header lines.
        assert_eq!(set.examples[0].line, 8, "{file}");
    }
}

#[test]
fn sktimes_univariate_unequal_length_file_reads() {
    let set = TsDataset::read(fixture("Walk/Walk_TRAIN.ts")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.dimensions, 1);
    assert_eq!(set.classes, ["left", "right"]);
    let lengths: Vec<usize> = set.examples.iter().map(|e| e.length).collect();
    assert_eq!(lengths, [4, 5, 6, 7, 4, 5]);
}

#[test]
fn sktimes_gaps_are_refused_or_filled_as_the_config_says() {
    let path = fixture("Gaps/Gaps_TRAIN.ts");
    match TsDataset::read(&path) {
        Err(TsError::Parse { line, message, .. }) => {
            assert_eq!(line, 8, "{message}");
            assert!(message.contains("data.missing"), "{message}");
        }
        other => panic!("accepted: {other:?}"),
    }
    let set = TsDataset::read_with(&path, MissingValues::Fill).unwrap_or_else(|e| panic!("{e}"));
    let first = &set.examples[0].values;
    assert_eq!(first[0], first[2]);
    assert_eq!(first[1], first[2]);
    let second = &set.examples[1].values;
    assert_eq!(second[3], second[2]);
    assert!(
        set.examples
            .iter()
            .flat_map(|e| &e.values)
            .all(|v| v.is_finite())
    );
}
