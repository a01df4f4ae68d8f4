//! CTC transcribers trained on a small pronouncing dictionary the test writes: the symbols kept with
//! the run, it learns, it resumes exactly, and a dictionary or config that cannot work is refused
//! with a message that says so.

use crate::common;

use crate::common::{SERIAL, options};

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use data::Symbols;
use train::TrainConfig;

type B = Autodiff<NdArray>;

fn temp(tag: &str) -> PathBuf {
    common::temp("transcription-runs", tag)
}

/// A made-up language with a regular spelling: each letter has one sound (`c` two, by what
/// follows), words of 2–6 letters drawn from a fixed generator, some with a second pronunciation.
fn dictionary(words: usize) -> String {
    let sounds = [
        ('a', "AA"),
        ('b', "B"),
        ('d', "D"),
        ('e', "EH"),
        ('i', "IY"),
        ('k', "K"),
        ('m', "M"),
        ('o', "OW"),
        ('s', "S"),
        ('t', "T"),
    ];
    let mut state = 11u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    let mut out = String::new();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < words {
        let len = 2 + next(5);
        let letters: Vec<(char, &str)> = (0..len).map(|_| sounds[next(sounds.len())]).collect();
        let word: String = letters.iter().map(|(c, _)| *c).collect();
        if !seen.insert(word.clone()) {
            continue;
        }
        let phonemes: Vec<&str> = letters.iter().map(|(_, p)| *p).collect();
        out.push_str(&format!("{word} {}\n", phonemes.join(" ")));
        if next(10) == 0 {
            out.push_str(&format!("{word}(2) {} AH0\n", phonemes.join(" ")));
        }
    }
    out
}

fn dataset(tag: &str, content: &str) -> PathBuf {
    let dir = temp(tag);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cmudict.dict"), content).unwrap();
    dir
}

fn config(data_dir: &Path, epochs: usize) -> TrainConfig {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/g2p.json"),
    )
    .unwrap();
    let mut config = TrainConfig::from_json(&text, Path::new("configs/g2p.json")).unwrap();
    config.data.dir = Some(data_dir.to_path_buf());
    config
        .data
        .pronunciations
        .as_mut()
        .unwrap()
        .validation_fraction = 0.1;
    config.model.input_size = 8;
    config.model.hidden_size = 24;
    config.model.dropout = 0.0;
    config.model.output_dropout = 0.0;
    config.batch_size = 16;
    config.eval_batch_size = 32;
    config.num_epochs = epochs;
    config.optimizer = train::OptimizerConfig::Adam {
        learning_rate: 0.02,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    };
    config
}

#[test]
fn a_transcription_run_keeps_its_symbols_and_learns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("learns", &dictionary(600));
    let run = temp("learns-run");
    let outcome =
        train::train::<B>(options(config(&data, 12), &run, false), Default::default()).unwrap();
    let symbols = Symbols::load(&run.join(Symbols::FILE)).unwrap();
    assert_eq!(symbols.inputs.concat(), "<pad>abdeikmost");
    assert_eq!(symbols.outputs[0], "<blank>");
    assert_eq!(symbols.outputs.len(), 12, "{:?}", symbols.outputs);
    let saved = TrainConfig::load(run.join("config.json")).unwrap();
    assert_eq!(saved.model.vocab_size, Some(symbols.inputs.len()));
    assert_eq!(saved.model.num_classes, symbols.outputs.len());
    let test = outcome
        .metrics
        .test
        .expect("the test words are evaluated once");
    let per = test.token_error_rate.expect("a phoneme error rate");
    assert!(per < 15.0, "phoneme error rate {per}% (test {test:?})");
    assert!(test.accuracy > 50.0, "words right {}%", test.accuracy);
}

#[test]
fn a_transcription_run_resumes_exactly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("resume", &dictionary(200));
    let with_dropout = |epochs| {
        let mut config = config(&data, epochs);
        config.model.dropout = 0.2;
        config.model.output_dropout = 0.2;
        config.lr_schedule = train::ScheduleConfig::new();
        config
    };
    let (straight, parted) = (temp("straight"), temp("parted"));
    train::train::<B>(
        options(with_dropout(3), &straight, false),
        Default::default(),
    )
    .unwrap();
    train::train::<B>(options(with_dropout(2), &parted, false), Default::default()).unwrap();
    train::train::<B>(options(with_dropout(3), &parted, true), Default::default()).unwrap();
    let model = |dir: &Path| common::run_weights(dir);
    assert!(
        model(&straight) == model(&parted),
        "the resumed run differs"
    );
}

#[test]
fn dictionaries_and_configs_that_cannot_work_are_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = |config: TrainConfig, tag: &str| {
        train::train::<B>(options(config, &temp(tag), false), Default::default())
            .unwrap_err()
            .to_string()
    };
    let bad = dataset("bad", "abbey AE1 B IY0\nlonely\n");
    let message = run(config(&bad, 1), "bad-run");
    assert!(
        message.contains("cmudict.dict:2:") && message.contains("no pronunciation"),
        "{message}"
    );
    let good = dataset("good", &dictionary(200));
    let mut wrong_head = config(&good, 1);
    wrong_head.model.head = model::Head::FinalState;
    let message = run(wrong_head, "head-run");
    assert!(message.contains("every_step"), "{message}");
    let mut wrong_classes = config(&good, 1);
    wrong_classes.model.num_classes = 5;
    let message = run(wrong_classes, "classes-run");
    assert!(
        message.contains("num_classes") && message.contains("phonemes"),
        "{message}"
    );
    let missing = temp("missing");
    let message = run(config(&missing, 1), "missing-run");
    assert!(message.contains("cmudict.dict"), "{message}");
    let mut no_section = config(&good, 1);
    no_section.data.pronunciations = None;
    let message = no_section.validate().unwrap_err();
    assert!(message.contains("pronunciations"), "{message}");
}
