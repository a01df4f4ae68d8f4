//! The batcher's tensors against hand-computed normalization.

use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use data::{MnistBatcher, MnistItem, SequenceBatch};

type B = NdArray;

#[test]
fn pixels_are_scaled_then_normalized_with_mnist_statistics() {
    let batcher = MnistBatcher::new(2, 3, 0.1307, 0.3081);
    let items = vec![
        MnistItem {
            pixels: vec![0, 255, 128, 1, 2, 3],
            label: 7,
        },
        MnistItem {
            pixels: vec![10, 20, 30, 40, 50, 60],
            label: 0,
        },
    ];
    let batch: SequenceBatch<B> = batcher.batch(items.clone(), &Default::default());
    assert_eq!(batch.sequences.dims(), [2, 2, 3]);
    assert_eq!(
        batch.targets.clone().into_data().to_vec::<i64>().unwrap(),
        vec![7, 0]
    );
    let got = batch.sequences.into_data().to_vec::<f32>().unwrap();
    // By hand: 0 → (0 - 0.1307) / 0.3081 = -0.424213; 255 → (1 - 0.1307) / 0.3081 = 2.821487.
    assert!((got[0] - -0.424_213).abs() < 1e-5, "{}", got[0]);
    assert!((got[1] - 2.821_487).abs() < 1e-5, "{}", got[1]);
    for (i, &p) in items.iter().flat_map(|it| it.pixels.iter()).enumerate() {
        let expected = (p as f64 / 255.0 - 0.1307) / 0.3081;
        assert!(
            (got[i] as f64 - expected).abs() < 1e-5,
            "pixel {i}: {} vs {expected}",
            got[i]
        );
    }
}

#[test]
fn other_statistics_are_honoured() {
    let batcher = MnistBatcher::new(1, 2, 0.5, 0.5);
    let batch: SequenceBatch<B> = batcher.batch(
        vec![MnistItem {
            pixels: vec![0, 255],
            label: 1,
        }],
        &Default::default(),
    );
    assert_eq!(
        batch.sequences.into_data().to_vec::<f32>().unwrap(),
        vec![-1.0, 1.0]
    );
}
