//! One code base, three backends: the same PyTorch weights give the same logits on ndarray, flex and
//! wgpu, and one SGD step gives the same losses. wgpu runs for real: on a GPU, or without one on
//! Mesa's software Vulkan driver (lavapipe; Debian: `apt-get install mesa-vulkan-drivers libvulkan1`).
//! Without any Vulkan/Metal/DX12 adapter this test fails, naming what to install; it never skips.

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Flex, NdArray, Wgpu};
use burn::module::AutodiffModule;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{ElementConversion, Tensor};
use model::RecurrentAutodiffBackend;
use model::parity;
use model::pytorch::StateDict;
use model::{RecurrentClassifier, cross_entropy};

const TOLERANCE: f32 = 1e-4;

fn shared_fixture(cell: &str) -> StateDict {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../shared/fixtures/pytorch-{cell}-h10-l2.safetensors"
    ));
    StateDict::read(&path).unwrap_or_else(|e| panic!("{e} (the shared fixtures live in ../shared)"))
}

/// What one backend computes from a reference file.
#[derive(Debug)]
struct Outputs {
    logits: Vec<f32>,
    loss_before: f32,
    loss_after_one_step: f32,
    parity: parity::ParityReport,
}

fn outputs<B: RecurrentAutodiffBackend>(reference: &StateDict, device: &B::Device) -> Outputs {
    let mut model: RecurrentClassifier<B> = reference.to_classifier(device).unwrap();
    let shape = reference.get("input", "test").unwrap().shape().to_vec();
    let input: Tensor<B, 3> = reference
        .float_tensor("input", [shape[0], shape[1], shape[2]], "test", device)
        .unwrap();
    let targets = reference.int_tensor::<B>("target", device).unwrap();
    let logits = model.valid().forward(input.clone().inner());
    let loss = cross_entropy(model.forward(input.clone()), targets.clone());
    let loss_before = loss.clone().into_scalar().elem::<f32>();
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.5).with_dampening(0.0),
        ))
        .init::<B, RecurrentClassifier<B>>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    model = optimizer.step(0.01, model, grads);
    let loss_after_one_step = cross_entropy(model.forward(input), targets)
        .into_scalar()
        .elem::<f32>();
    Outputs {
        logits: logits.into_data().convert::<f32>().to_vec().unwrap(),
        loss_before,
        loss_after_one_step,
        parity: parity::check::<B>(reference, device).unwrap(),
    }
}

/// The wgpu device, or a failure that says what is missing (instead of the runtime's panic).
fn wgpu_outputs(reference: &StateDict) -> Outputs {
    let device = WgpuDevice::DefaultDevice;
    std::panic::catch_unwind(|| outputs::<Autodiff<Wgpu>>(reference, &device)).unwrap_or_else(
        |panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "wgpu could not run ({message}). It needs a Vulkan, Metal or DX12 adapter; without a GPU, install Mesa's software Vulkan driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1)"
            )
        },
    )
}

fn assert_close(what: &str, a: &Outputs, b: &Outputs) {
    let logits = a
        .logits
        .iter()
        .zip(&b.logits)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(a.logits.len(), b.logits.len());
    assert!(logits <= TOLERANCE, "{what}: logits differ by {logits}");
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
        assert!((x - y).abs() <= TOLERANCE, "{what}: {name} {x} vs {y}");
    }
}

#[test]
fn ndarray_flex_and_wgpu_agree_on_every_cell() {
    for cell in ["lstm", "peephole", "gru", "rnn"] {
        let reference = shared_fixture(cell);
        let ndarray = outputs::<Autodiff<NdArray>>(&reference, &Default::default());
        let flex = outputs::<Autodiff<Flex>>(&reference, &Default::default());
        let wgpu = wgpu_outputs(&reference);
        assert_close(&format!("{cell}: flex vs ndarray"), &flex, &ndarray);
        assert_close(&format!("{cell}: wgpu vs ndarray"), &wgpu, &ndarray);
        // The loss went down, and every backend is within PyTorch's tolerances too.
        assert!(ndarray.loss_after_one_step < ndarray.loss_before, "{cell}");
        for (name, outputs) in [("ndarray", &ndarray), ("flex", &flex), ("wgpu", &wgpu)] {
            assert!(
                outputs.parity.passes(),
                "{cell} on {name} strays from PyTorch: {:?}",
                outputs.parity
            );
        }
    }
}

#[test]
fn bidirectional_stacks_agree_on_every_backend() {
    // Every backend runs its fused kernels (wgpu its CubeCL ones): both directions against
    // PyTorch's `bidirectional=True`.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("pytorch-bi-") {
            continue;
        }
        let reference = StateDict::read(&path).unwrap();
        assert!(reference.model_config().unwrap().bidirectional, "{name}");
        let ndarray = outputs::<Autodiff<NdArray>>(&reference, &Default::default());
        let flex = outputs::<Autodiff<Flex>>(&reference, &Default::default());
        let wgpu = wgpu_outputs(&reference);
        assert_close(&format!("{name}: flex vs ndarray"), &flex, &ndarray);
        assert_close(&format!("{name}: wgpu vs ndarray"), &wgpu, &ndarray);
        for (backend, outputs) in [("ndarray", &ndarray), ("flex", &flex), ("wgpu", &wgpu)] {
            assert!(
                outputs.parity.passes(),
                "{name} on {backend} strays from PyTorch: {:?}",
                outputs.parity
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "{checked} bidirectional fixtures in {}",
        dir.display()
    );
}
