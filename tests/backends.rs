//! One code base, three backends: the same PyTorch weights (and packed sequences) give the same logits on ndarray, flex and
//! wgpu, and one SGD step gives the same losses. wgpu runs for real: on a GPU, or without one on
//! Mesa's software Vulkan driver (lavapipe; Debian: `apt-get install mesa-vulkan-drivers libvulkan1`).
//! The wgpu tests are in the second tier (`cargo test --workspace --features wgpu-tests -- --include-ignored`,
//! which CI runs):
//! without any Vulkan/Metal/DX12 adapter they fail, naming what to install; they never skip.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::module::AutodiffModule;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use model::parity::{self, LOGITS_TOLERANCE, LOSS_TOLERANCE};
use model::pytorch::StateDict;
use model::{RecurrentClassifier, cross_entropy};

/// The repository's PyTorch fixture of one cell at the reference sizes (tests/fixtures/make_fixtures.py).
fn reference_fixture(cell: &str) -> StateDict {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/pytorch-{cell}-h10-l2.safetensors"));
    StateDict::read(&path).unwrap()
}

/// What one backend computes from a reference file.
#[derive(Debug)]
struct Outputs {
    logits: Vec<f32>,
    loss_before: f32,
    loss_after_one_step: f32,
    parity: parity::ParityReport,
}

fn outputs<B: AutodiffBackend>(reference: &StateDict, device: &B::Device) -> Outputs {
    let mut model: RecurrentClassifier<B> = reference.to_classifier(device).unwrap();
    let shape = reference.get("input", "test").unwrap().shape().to_vec();
    let input: Tensor<B, 3> = reference
        .float_tensor("input", [shape[0], shape[1], shape[2]], "test", device)
        .unwrap();
    let targets = reference.int_tensor::<B>("target", device).unwrap();
    let lengths = parity::sequence_lengths(reference).unwrap();
    let lengths = lengths.as_deref();
    let logits = model
        .valid()
        .forward_lengths(input.clone().inner(), lengths);
    let loss = cross_entropy(
        model.forward_lengths(input.clone(), lengths),
        targets.clone(),
    );
    let loss_before = loss.clone().into_scalar().elem::<f32>();
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.5).with_dampening(0.0),
        ))
        .init::<B, RecurrentClassifier<B>>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    model = optimizer.step(0.01, model, grads);
    let loss_after_one_step = cross_entropy(model.forward_lengths(input, lengths), targets)
        .into_scalar()
        .elem::<f32>();
    Outputs {
        logits: logits.into_data().convert::<f32>().to_vec().unwrap(),
        loss_before,
        loss_after_one_step,
        parity: parity::check::<B>(reference, device).unwrap(),
    }
}

fn assert_close(what: &str, a: &Outputs, b: &Outputs) {
    let logits = a
        .logits
        .iter()
        .zip(&b.logits)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(a.logits.len(), b.logits.len());
    assert!(
        logits <= LOGITS_TOLERANCE,
        "{what}: logits differ by {logits}"
    );
    eprintln!(
        "{what}: logits max |diff| {logits:.2e}, losses {:.2e} / {:.2e}",
        (a.loss_before - b.loss_before).abs(),
        (a.loss_after_one_step - b.loss_after_one_step).abs()
    );
    for (name, x, y) in [
        ("loss", a.loss_before, b.loss_before),
        (
            "loss after one SGD step",
            a.loss_after_one_step,
            b.loss_after_one_step,
        ),
    ] {
        assert!((x - y).abs() <= LOSS_TOLERANCE, "{what}: {name} {x} vs {y}");
    }
}

/// The reference-sized fixture of every cell, then every bidirectional fixture and every fixture of
/// packed sequences (`*-lengths`, NaN and ±1e30 past each length).
fn fixtures() -> Vec<(String, StateDict)> {
    let mut all: Vec<(String, StateDict)> = ["lstm", "peephole", "gru", "rnn"]
        .into_iter()
        .map(|cell| (cell.to_string(), reference_fixture(cell)))
        .collect();
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut others: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".safetensors")
                && (name.starts_with("pytorch-bi-") || name.ends_with("-lengths.safetensors"))
        })
        .collect();
    others.sort();
    for path in others {
        let reference = StateDict::read(&path).unwrap();
        all.push((
            path.file_stem().unwrap().to_string_lossy().into_owned(),
            reference,
        ));
    }
    let count = |keep: fn(&StateDict) -> bool| all.iter().filter(|(_, r)| keep(r)).count();
    assert!(
        count(|r| r.model_config().unwrap().bidirectional) >= 3,
        "too few bidirectional fixtures in {}",
        dir.display()
    );
    assert!(
        count(|r| r.tensors.contains_key("lengths")) >= 3,
        "too few fixtures of packed sequences in {}",
        dir.display()
    );
    all
}

/// Every fixture on backend `B` against ndarray, and against PyTorch; both directions of the
/// bidirectional ones through each backend's fused kernels (wgpu: its CubeCL ones).
fn agrees_with_ndarray(backend: &str, run: impl Fn(&StateDict) -> Outputs) {
    for (name, reference) in fixtures() {
        let ndarray = outputs::<Autodiff<NdArray>>(&reference, &Default::default());
        let other = run(&reference);
        assert_close(&format!("{name}: {backend} vs ndarray"), &other, &ndarray);
        // The loss went down, and every backend is within PyTorch's tolerances too.
        assert!(ndarray.loss_after_one_step < ndarray.loss_before, "{name}");
        for (which, outputs) in [("ndarray", &ndarray), (backend, &other)] {
            assert!(
                outputs.parity.passes(),
                "{name} on {which} strays from PyTorch: {:?}",
                outputs.parity
            );
        }
    }
}

#[test]
fn ndarray_and_flex_agree_on_every_cell_and_direction() {
    agrees_with_ndarray("flex", |reference| {
        outputs::<Autodiff<Flex>>(reference, &Default::default())
    });
}

/// wgpu, compiled with `--features wgpu-tests` (the second tier): a first-tier build then compiles
/// neither wgpu nor CubeCL.
#[cfg(feature = "wgpu-tests")]
mod wgpu {
    use super::*;
    use burn::backend::Wgpu;
    use burn::backend::wgpu::{CubeBackend, WgpuDevice, WgpuRuntime};
    use model::has_kernels;

    /// A CubeCL backend without fusion: no kernels here (they are operations of the fusion stream).
    type Unfused = Autodiff<CubeBackend<WgpuRuntime, f32, i32, u32>>;

    /// Runs `f` on wgpu, turning the runtime's panic into one that says what is missing.
    fn on_wgpu<T>(f: impl FnOnce() -> T) -> T {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "wgpu could not run ({message}). It needs a Vulkan, Metal or DX12 adapter; without a GPU, install Mesa's software Vulkan driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1)"
            )
        })
    }

    /// What `B` on the wgpu device computes from a reference file.
    fn wgpu_outputs<B: AutodiffBackend<Device = WgpuDevice>>(reference: &StateDict) -> Outputs {
        on_wgpu(|| outputs::<B>(reference, &WgpuDevice::DefaultDevice))
    }

    #[test]
    #[ignore = "needs a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1); CI runs it with --include-ignored"]
    fn wgpu_agrees_with_ndarray_on_every_cell_and_direction() {
        agrees_with_ndarray("wgpu", wgpu_outputs::<Autodiff<Wgpu>>);
    }

    /// The language-model fixtures (Embedding → LSTM or GRU → Linear, two windows, the state carried)
    /// on wgpu: logits, loss, final states and every gradient within PyTorch's tolerance, through the
    /// CubeCL kernels with an initial state.
    #[test]
    #[ignore = "needs a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1); CI runs it with --include-ignored"]
    fn wgpu_language_models_match_pytorch() {
        for cell in ["lstm", "gru"] {
            let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
                "tests/fixtures/pytorch-lm-{cell}-h7-l2.safetensors"
            ));
            let reference = StateDict::read(&path).unwrap();
            let device = WgpuDevice::DefaultDevice;
            let report = on_wgpu(|| {
                parity::check_language_model::<Autodiff<Wgpu>>(&reference, &device).unwrap()
            });
            assert!(report.passes(), "{cell} on wgpu: {report:?}");
        }
    }

    /// The CTC fixtures (`nn.CTCLoss` on given log-probabilities, and a bidirectional LSTM transcriber
    /// over words of different lengths) on wgpu: the loss and every gradient within the CPU backends'
    /// tolerance.
    #[test]
    #[ignore = "needs a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1); CI runs it with --include-ignored"]
    fn wgpu_ctc_matches_pytorch() {
        for (file, whole_model) in [
            ("ctc-loss-mean.safetensors", false),
            ("ctc-loss-zero-infinity.safetensors", false),
            ("ctc-bilstm.safetensors", true),
        ] {
            let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(file);
            let reference = StateDict::read(&path).unwrap();
            let device = WgpuDevice::DefaultDevice;
            let report = on_wgpu(|| {
                if whole_model {
                    parity::check_ctc_model::<Autodiff<Wgpu>>(&reference, &device).unwrap()
                } else {
                    parity::check_ctc_loss::<Autodiff<Wgpu>>(&reference, &device).unwrap()
                }
            });
            assert!(report.passes(), "{file} on wgpu: {report:?}");
        }
    }

    /// A CubeCL backend without fusion: the model runs it step by step, as on any backend without kernels, and still agrees with
    /// ndarray and PyTorch.
    #[test]
    #[ignore = "needs a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1); CI runs it with --include-ignored"]
    fn wgpu_without_fusion_runs_step_by_step_and_agrees_with_ndarray() {
        assert!(!has_kernels::<Unfused>() && has_kernels::<Autodiff<Wgpu>>());
        agrees_with_ndarray("wgpu without fusion", wgpu_outputs::<Unfused>);
    }

    /// A language model trained end to end on that backend (step by step, through Burn's autodiff),
    /// learning what the fused CPU kernels learn from the same text and config.
    #[test]
    #[ignore = "needs a Vulkan driver (Debian: mesa-vulkan-drivers libvulkan1); CI runs it with --include-ignored"]
    fn wgpu_without_fusion_trains_a_language_model() {
        let dir = std::env::temp_dir().join(format!("backends-unfused-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let words = ["to", "be", "or", "not", "that", "is", "the", "question"];
        let text: String = (0..1500usize)
            .map(|i| words[(i * 5 + i / 7) % words.len()])
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(dir.join("input.txt"), &text).unwrap();
        let config_path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/shakespeare.json");
        let json = std::fs::read_to_string(&config_path).unwrap();
        let mut config = train::TrainConfig::from_json(&json, &config_path).unwrap();
        config.data.dir = Some(dir.clone());
        let text_config = config.data.text.as_mut().unwrap();
        text_config.window = 16;
        text_config.validation_chars = 400;
        config.model.input_size = 8;
        config.model.hidden_size = 16;
        config.batch_size = 8;
        config.eval_batch_size = 4;
        config.num_epochs = 3;
        config.optimizer = train::OptimizerConfig::Adam {
            learning_rate: 0.01,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        };
        let options = |run: &str| train::RunOptions {
            config: config.clone(),
            run_dir: dir.join(run),
            resume: false,
            overwrite: false,
            backend: run.into(),
            display: train::Display::Lines,
            stop: Default::default(),
        };
        let test_loss = |metrics: train::RunMetrics| metrics.test.unwrap().loss;
        let fused =
            train::train::<Autodiff<NdArray>>(options("ndarray"), Default::default()).unwrap();
        let unfused = on_wgpu(|| {
            train::train::<Unfused>(options("wgpu-unfused"), WgpuDevice::DefaultDevice).unwrap()
        });
        let (a, b) = (test_loss(fused.metrics), test_loss(unfused.metrics));
        // Uniform guessing costs ln 13 = 2.56 nats a character; each backend draws the
        // initial weights from its own generator, so the two runs are close, not equal.
        assert!(
            b < 1.5 && (a - b).abs() < 0.25,
            "test loss {a} on ndarray, {b} on wgpu without fusion"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
