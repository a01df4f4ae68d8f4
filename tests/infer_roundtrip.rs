//! Train with the `train` library, load with the `infer` library: the record crosses crates intact.
//! Also: mismatched records are refused, PyTorch weights come over, and pictures are classified.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::data::dataset::Dataset;
use data::{MnistBatcher, MnistFiles, Split};
use infer::{InferError, Run, predict, preprocess};
use model::parity::LOGITS_TOLERANCE;
use model::pytorch::StateDict;
use train::{Display, RunOptions, TrainConfig};

type B = NdArray;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roundtrip-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn test_images(n: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    // MNIST_DIR, else the cache that `train` downloads into; never the network.
    if let Err(error) = MnistFiles::locate(None) {
        panic!("this test needs real MNIST: {error}");
    }
    let test = MnistFiles::locate(None).unwrap().load(Split::Test).unwrap();
    (0..n)
        .map(|i| test.get(i).unwrap())
        .map(|item| (item.pixels, item.label))
        .unzip()
}

fn short_run(dir: &Path) -> train::RunOutcome<B> {
    let mut config = TrainConfig::load(repo().join("configs/smoke.json")).unwrap();
    config.num_epochs = 1;
    let options = RunOptions {
        config,
        run_dir: dir.to_path_buf(),
        resume: false,
        overwrite: false,
        backend: "ndarray".into(),
        display: Display::Lines,
        stop: Default::default(),
    };
    train::train::<Autodiff<B>>(options, Default::default()).unwrap()
}

/// The reference-architecture fixture's input batch and PyTorch's logits on it.
fn reference_batch(
    reference: &StateDict,
) -> (burn::tensor::Tensor<B, 3>, burn::tensor::Tensor<B, 2>) {
    let device = Default::default();
    let input = reference
        .float_tensor::<B, 3>("input", [8, 28, 28], "", &device)
        .unwrap();
    let logits = reference
        .float_tensor::<B, 2>("logits", [8, 10], "", &device)
        .unwrap();
    (input, logits)
}

#[test]
fn a_trained_record_loads_in_another_crate_with_identical_predictions() {
    let dir = temp("train");
    let outcome = short_run(&dir);
    let run = Run::open(&dir).unwrap();
    let loaded = run.load_model::<B>(&Default::default()).unwrap();
    let (images, _) = test_images(32);
    let batcher = MnistBatcher::new(28, 28, run.data.mean, run.data.std);
    let device = Default::default();
    assert_eq!(
        predict(&outcome.model, &batcher, &images, &device),
        predict(&loaded, &batcher, &images, &device)
    );

    // Evaluating the loaded record reproduces what training reported for it.
    let test = MnistFiles::locate(None)
        .unwrap()
        .load(Split::Test)
        .unwrap()
        .take(500);
    let batches = (0..test.len()).step_by(100).map(|start| {
        let items: Vec<_> = (start..start + 100).map(|i| test.get(i).unwrap()).collect();
        let batch: data::SequenceBatch<B> =
            burn::data::dataloader::batcher::Batcher::batch(&batcher, items, &device);
        (batch.sequences, batch.lengths, batch.targets)
    });
    let evaluation = loaded.evaluate(batches);
    let reported = outcome.metrics.epochs.last().unwrap();
    assert!(
        (evaluation.accuracy - reported.valid_accuracy).abs() < 1e-9,
        "{evaluation:?} vs {reported:?}"
    );
    assert!(
        (evaluation.loss - reported.valid_loss).abs() < 1e-5,
        "{evaluation:?} vs {reported:?}"
    );
}

#[test]
fn a_record_that_does_not_match_its_config_is_refused() {
    let dir = temp("mismatch");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.mpk"] {
        std::fs::copy(
            repo().join("artifacts/reference").join(file),
            dir.join(file),
        )
        .unwrap();
    }
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        config.replace("\"hidden_size\": 10", "\"hidden_size\": 16"),
    )
    .unwrap();
    let err = Run::open(&dir)
        .unwrap()
        .load_model::<B>(&Default::default())
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, InferError::Record(_)), "{text}");
    assert!(
        text.contains("[28, 40]") && text.contains("[28, 64]"),
        "{text}"
    );

    let err = Run::open(repo().join("configs")).unwrap_err();
    assert!(matches!(err, InferError::NotARun { .. }), "{err}");
}

#[test]
fn pytorch_weights_imported_as_a_run_predict_like_pytorch() {
    let fixture = repo().join("tests/fixtures/pytorch-lstm-h10-l2.safetensors");
    let out = temp("import");
    let device = Default::default();
    infer::import_pytorch::<B>(&fixture, &out, None, &device).unwrap();
    let model = Run::open(&out).unwrap().load_model::<B>(&device).unwrap();
    let (input, expected) = reference_batch(&StateDict::read(&fixture).unwrap());
    let logits = model.forward(input);
    let diff: f32 = (logits.clone() - expected.clone())
        .abs()
        .max()
        .into_scalar();
    assert!(diff <= LOGITS_TOLERANCE, "{diff}");
    let ours: Vec<i64> = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    let theirs: Vec<i64> = expected
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn pictures_are_classified_like_the_digits_they_show() {
    let (images, labels) = test_images(3);
    let dir = temp("png");
    std::fs::create_dir_all(&dir).unwrap();
    let run = Run::open(repo().join("artifacts/reference")).unwrap();
    let device = Default::default();
    let model = run.load_model::<B>(&device).unwrap();
    let batcher = MnistBatcher::new(28, 28, run.data.mean, run.data.std);
    for (i, (pixels, label)) in images.iter().zip(&labels).enumerate() {
        // A larger picture, as a scan would be: 3x upscale; and a dark-on-light copy.
        let small = image::GrayImage::from_raw(28, 28, pixels.clone()).unwrap();
        let big = image::imageops::resize(&small, 84, 84, image::imageops::FilterType::Triangle);
        let light = dir.join(format!("digit-{i}.png"));
        big.save(&light).unwrap();
        let mut inverted = big.clone();
        image::imageops::invert(&mut inverted);
        let dark = dir.join(format!("digit-{i}-on-paper.png"));
        inverted.save(&dark).unwrap();

        let from_png = preprocess::load_image(&light, false).unwrap();
        let from_paper = preprocess::load_image(&dark, true).unwrap();
        assert_eq!(
            from_png, from_paper,
            "inverting a dark-on-light picture gives the same image"
        );
        let prediction = &predict(&model, &batcher, &[from_png], &device)[0];
        assert_eq!(
            prediction.digit, *label as usize,
            "picture {i}: {prediction:?}"
        );
        assert!((prediction.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let err = preprocess::load_image(&repo().join("README.md"), false).unwrap_err();
    assert!(
        matches!(err, InferError::Image { .. }) && err.to_string().contains("README.md"),
        "{err}"
    );
}

#[test]
fn a_torch_save_state_dict_imports_like_its_safetensors_twin() {
    let pt = repo().join("tests/fixtures/pytorch-lstm-h10-l2.pt");
    let safetensors = repo().join("tests/fixtures/pytorch-lstm-h10-l2.safetensors");
    let from_pt = StateDict::read_any(&pt).unwrap();
    let reference = StateDict::read(&safetensors).unwrap();
    assert_eq!(from_pt.tensors.len(), 10);
    for (name, tensor) in &from_pt.tensors {
        assert_eq!(Some(tensor), reference.tensors.get(name), "{name}");
    }
    let out = temp("import-pt");
    let device = Default::default();
    infer::import_pytorch::<B>(&pt, &out, None, &device).unwrap();
    let model = Run::open(&out).unwrap().load_model::<B>(&device).unwrap();
    let (input, expected) = reference_batch(&reference);
    let diff: f32 = (model.forward(input) - expected).abs().max().into_scalar();
    assert!(diff <= LOGITS_TOLERANCE, "{diff}");
}

/// A character language model saved with the names of PyTorch's word_language_model, plus its
/// vocabulary, becomes a run that evaluates to PyTorch's own loss on the held-out text (the same
/// streams and windows, the state carried through; tests/fixtures/pytorch-lm-import/).
#[test]
fn a_pytorch_language_model_imported_as_a_run_evaluates_to_pytorchs_loss() {
    let fixture = repo().join("tests/fixtures/pytorch-lm-import");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap())
            .unwrap();
    let out = temp("import-lm");
    let device = Default::default();
    let vocabulary = data::Vocabulary::load(&fixture.join("vocab.json")).unwrap();
    let error = infer::import_pytorch::<B>(&fixture.join("model.safetensors"), &out, None, &device)
        .unwrap_err();
    assert!(error.to_string().contains("--vocab"), "{error}");
    let config = infer::import_pytorch::<B>(
        &fixture.join("model.safetensors"),
        &out,
        Some(&vocabulary),
        &device,
    )
    .unwrap();
    assert_eq!(config.vocab_size, Some(vocabulary.len()));
    let mut run = Run::open(&out).unwrap();
    assert!(run.is_text());
    assert_eq!(run.vocabulary().unwrap(), vocabulary);
    run.data.text.as_mut().unwrap().file = "text.txt".into();
    let (_, tokens) = infer::text::test_tokens(&run, Some(&fixture)).unwrap();
    let model = run.load_model::<B>(&device).unwrap();
    let result = infer::text::evaluate_text(&model, tokens, 4, 16, &device);
    assert_eq!(result.items as u64, expected["items"].as_u64().unwrap());
    let theirs = expected["nats_per_char"].as_f64().unwrap();
    assert!(
        (result.loss - theirs).abs() < 1e-6,
        "ours {} nats/char, PyTorch's {theirs}",
        result.loss
    );
    assert!((result.accuracy - expected["accuracy"].as_f64().unwrap()).abs() < 1e-9);

    // Exported again, the weights are PyTorch's, under the same names.
    let exported = StateDict::from_classifier(&model);
    let original = StateDict::read(fixture.join("model.safetensors")).unwrap();
    let names = |s: &StateDict| s.tensors.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&exported), names(&original));
    assert_eq!(exported.float_values(), original.float_values());
}
