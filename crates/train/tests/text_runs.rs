//! Character language models trained on a text the test writes: the vocabulary kept with the run,
//! it learns, it is deterministic and resumes exactly (the carried state included), and a text or
//! config that cannot work is refused with a message that says so.

use crate::common;

use crate::common::{SERIAL, options};

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use data::Vocabulary;
use train::{TrainConfig, TrainError};

type B = Autodiff<NdArray>;

fn temp(tag: &str) -> PathBuf {
    common::temp("text-runs", tag)
}

/// A text with structure a small LSTM can learn: words of a small lexicon, each followed by a space
/// or a full stop and a newline, in a pseudo-random order.
fn text(chars: usize) -> String {
    let words = ["to", "be", "or", "not", "that", "is", "the", "question"];
    let mut state = 7u64;
    let mut out = String::new();
    while out.len() < chars {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(words[(state >> 40) as usize % words.len()]);
        out.push_str(if (state >> 20).is_multiple_of(7) {
            ".\n"
        } else {
            " "
        });
    }
    out
}

fn dataset(tag: &str, content: &[u8]) -> PathBuf {
    let dir = temp(tag);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input.txt"), content).unwrap();
    dir
}

fn config(data_dir: &Path, epochs: usize) -> TrainConfig {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/shakespeare.json"),
    )
    .unwrap();
    let mut config = TrainConfig::from_json(&text, Path::new("configs/shakespeare.json")).unwrap();
    config.data.dir = Some(data_dir.to_path_buf());
    let text_config = config.data.text.as_mut().unwrap();
    text_config.window = 16;
    text_config.validation_chars = 400;
    config.model.input_size = 8;
    config.model.hidden_size = 24;
    config.batch_size = 8;
    config.eval_batch_size = 4;
    config.num_epochs = epochs;
    config
}

#[test]
fn a_text_run_keeps_its_vocabulary_and_learns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("learns", text(6000).as_bytes());
    let run = temp("learns-run");
    let mut fast = config(&data, 8);
    fast.optimizer = train::OptimizerConfig::Adam {
        learning_rate: 0.01,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    };
    let outcome = train::train::<B>(options(fast, &run, false), Default::default()).unwrap();
    let vocabulary = Vocabulary::load(&run.join(Vocabulary::FILE)).unwrap();
    assert_eq!(
        vocabulary.chars().iter().collect::<String>(),
        "\n .abehinoqrstu"
    );
    let saved = TrainConfig::load(run.join("config.json")).unwrap();
    assert_eq!(saved.model.vocab_size, Some(vocabulary.len()));
    assert_eq!(saved.model.num_classes, vocabulary.len());
    // nanoGPT's split: the first 90 % trains (its last 400 characters validate).
    let chars = text(6000).chars().count();
    let train_end = (chars as f64 * 0.9) as usize;
    assert_eq!(outcome.metrics.train_items, train_end - 400 - 1);
    assert_eq!(outcome.metrics.valid_items, 400 - 1);
    let test = outcome
        .metrics
        .test
        .expect("the test part is evaluated once");
    assert_eq!(test.items, chars - train_end - 1);
    // Uniform guessing costs ln 14 = 2.64 nats a character.
    assert!(test.loss < 1.6, "test loss {} nats/char", test.loss);
    // The validation part run again through the kept model, the state carried through the same
    // streams, gives the validation loss training recorded for its epoch.
    let text = text(6000);
    let chars: Vec<char> = text.chars().collect();
    let valid: String = chars[train_end - 400..train_end].iter().collect();
    let tokens = vocabulary.encode(&valid, "validation").unwrap();
    let streams = data::Streams::new(std::sync::Arc::new(tokens), 4, 16);
    let windows = (0..burn::data::dataset::Dataset::len(&streams)).map(|i| {
        let w = burn::data::dataset::Dataset::get(&streams, i).unwrap();
        let shape = [w.streams, w.steps];
        let device = Default::default();
        (
            burn::tensor::Tensor::<NdArray, 2, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(w.inputs, shape),
                &device,
            ),
            burn::tensor::Tensor::<NdArray, 2, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(w.targets, shape),
                &device,
            ),
            w.index == 0,
        )
    });
    // metrics.json's epoch losses are means over batches (here windows); the evaluation's, over
    // characters: the same windows' losses, weighted by their characters.
    let mut state = None;
    let mut per_window = Vec::new();
    for (inputs, targets, first) in windows {
        if first {
            state = None;
        }
        let (logits, next) = outcome
            .model
            .forward_steps(model::Input::Tokens(inputs), state.take());
        state = Some(next);
        let [b, t, c] = logits.dims();
        let loss = model::cross_entropy_ignoring(
            logits.reshape([b * t, c]),
            targets.reshape([b * t]),
            data::IGNORE_TARGET,
        );
        per_window.push(f64::from(loss.into_scalar()));
    }
    let evaluation = per_window.iter().sum::<f64>() / per_window.len() as f64;
    let epoch = outcome.metrics.model_epoch.unwrap();
    let recorded = outcome.metrics.epochs[epoch - 1].valid_loss;
    assert!(
        (evaluation - recorded).abs() < 1e-5,
        "evaluated {evaluation} vs recorded {recorded} (epoch {epoch}; every epoch: {:?})",
        outcome
            .metrics
            .epochs
            .iter()
            .map(|e| e.valid_loss)
            .collect::<Vec<_>>()
    );
    let epochs = &outcome.metrics.epochs;
    assert!(
        epochs.last().unwrap().train_samples_per_second > 100.0,
        "characters per second"
    );
}

#[test]
fn a_text_run_is_deterministic_and_resumes_exactly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let data = dataset("resume", text(3000).as_bytes());
    let with_dropout = |epochs| {
        let mut config = config(&data, epochs);
        config.model.dropout = 0.2;
        config.model.output_dropout = 0.2;
        // The part trained with fewer epochs must see the same rates: a constant schedule.
        config.lr_schedule = train::ScheduleConfig::new();
        config
    };
    let (straight, parted, again) = (temp("straight"), temp("parted"), temp("again"));
    train::train::<B>(
        options(with_dropout(3), &straight, false),
        Default::default(),
    )
    .unwrap();
    train::train::<B>(options(with_dropout(2), &parted, false), Default::default()).unwrap();
    train::train::<B>(options(with_dropout(3), &parted, true), Default::default()).unwrap();
    train::train::<B>(options(with_dropout(3), &again, false), Default::default()).unwrap();
    let model = |dir: &Path| common::run_weights(dir);
    assert!(
        model(&straight) == model(&parted),
        "the resumed run differs"
    );
    assert!(
        model(&straight) == model(&again),
        "same seed, different weights"
    );
}

#[test]
fn texts_and_configs_that_cannot_work_are_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = |data: &Path, config: TrainConfig, tag: &str| {
        let _ = data;
        train::train::<B>(options(config, &temp(tag), false), Default::default())
            .unwrap_err()
            .to_string()
    };
    let empty = dataset("empty", b"");
    let message = run(&empty, config(&empty, 1), "empty-run");
    assert!(
        message.contains("is empty") && message.contains("input.txt"),
        "{message}"
    );

    let latin1 = dataset(
        "latin1",
        b"caf\xe9 au lait, a long enough text to make a window or two of it",
    );
    let message = run(&latin1, config(&latin1, 1), "latin1-run");
    assert!(
        message.contains("not UTF-8") && message.contains("offset 3"),
        "{message}"
    );

    let short = dataset("short", b"to be or not to be");
    let message = run(&short, config(&short, 1), "short-run");
    assert!(message.contains("fewer than 17"), "{message}");

    let fine = dataset("fine", text(3000).as_bytes());
    let mut wrong = config(&fine, 1);
    wrong.model.head = model::Head::FinalState;
    let error = train::train::<B>(options(wrong, &temp("head-run"), false), Default::default())
        .unwrap_err();
    assert!(matches!(error, TrainError::Config(_)));
    assert!(error.to_string().contains("every_step"), "{error}");

    let mut wrong = config(&fine, 1);
    wrong.model.num_classes = 5;
    let message = run(&fine, wrong, "classes-run");
    assert!(message.contains("model.num_classes is 5"), "{message}");

    // A text config with an image field set, or a text section on MNIST, is refused at load.
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/shakespeare.json"),
        )
        .unwrap(),
    )
    .unwrap();
    json["data"]["source"] = "mnist".into();
    for (key, value) in [("mean", 0.1307), ("std", 0.3081)] {
        json["data"][key] = value.into();
    }
    json["data"]["sequence"] = "rows".into();
    for key in ["permutation_seed", "validation_size", "split_seed"] {
        json["data"][key] = 0.into();
    }
    for key in ["train_limit", "eval_limit"] {
        json["data"][key] = serde_json::Value::Null;
    }
    let error = TrainConfig::from_json(&json.to_string(), Path::new("x.json")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("only data.source \"text\" reads it"),
        "{error}"
    );
}
