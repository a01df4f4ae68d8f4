//! Any text given as a `.ts` file must parse or be refused with an error naming a line, never panic,
//! under either missing-value policy; a file that parses has examples whose values fit their
//! declared length and channel count, all finite, and the same file parses the same way twice.

#![no_main]

use std::path::Path;

use data::{MissingValues, TsDataset, TsError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let path = Path::new("fuzz.ts");
    for missing in [MissingValues::Refuse, MissingValues::Fill] {
        match TsDataset::parse_with(text, path, missing) {
            Ok(set) => {
                assert!(!set.examples.is_empty());
                assert!(set.dimensions >= 1);
                for example in &set.examples {
                    assert!(example.length >= 1);
                    assert_eq!(example.values.len(), example.length * set.dimensions);
                    assert!(example.values.iter().all(|v| v.is_finite()));
                    assert!(example.line >= 1);
                    if let Some(label) = example.label {
                        assert!(label < set.classes.len());
                    }
                }
                let again = TsDataset::parse_with(text, path, missing).expect("parses again");
                assert_eq!(again, set);
            }
            Err(TsError::Parse { line, .. }) => {
                assert!(line <= text.lines().count());
            }
            Err(other) => panic!("parsing text gave a read error: {other}"),
        }
    }
});
