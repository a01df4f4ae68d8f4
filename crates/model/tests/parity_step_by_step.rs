//! PyTorch parity of the step-by-step fallback: every fixture, packed sequences included, with the fused
//! kernels switched off. A test binary of its own, since the switch holds for the whole process.

mod common;

use model::parity;
use model::pytorch::StateDict;

#[test]
fn the_fallback_matches_pytorch_on_every_fixture() {
    model::set_fused_kernels(false);
    let files = common::repo_fixtures();
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().ends_with("-lengths.safetensors"))
    );
    for file in &files {
        let reference = StateDict::read(file).unwrap();
        for_each_backend!(|name, device| {
            let report =
                parity::check::<B>(&reference, &device).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                report.passes(),
                "{name} step by step, {}: {report:?}",
                file.display()
            );
        });
    }
    assert!(
        !model::fused_kernels_enabled(),
        "the fallback ran throughout"
    );
}
