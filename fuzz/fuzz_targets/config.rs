//! Any text given as a training config must load or be refused with an error, never panic; and a
//! config that loads must write itself back to JSON that loads to the same config.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use train::TrainConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.json");
    if let Ok(config) = TrainConfig::from_json(text, path) {
        let written = serde_json::to_string(&config).expect("a loaded config serializes");
        let again = TrainConfig::from_json(&written, path).expect("a written config reloads");
        assert_eq!(again, config);
    }
});
