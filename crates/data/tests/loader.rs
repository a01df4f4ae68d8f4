//! The epoch loader: every item once per epoch, an order that depends only on (seed, epoch), so that
//! starting at epoch k reproduces what a loader that already served k-1 epochs would give.

use std::sync::Arc;

use burn::backend::NdArray;
use burn::data::dataloader::DataLoader;
use data::{EpochLoader, MnistBatcher, MnistDataset, SequenceBatch};

type B = NdArray;

/// 10 one-pixel images whose pixel is their index.
fn loader(batch_size: usize) -> EpochLoader<B, data::MnistItem, SequenceBatch<B>> {
    let dataset = MnistDataset::from_parts((0..10).collect(), vec![0; 10], 1, 1);
    // mean 0, std 1/255: normalized value = raw pixel.
    let batcher = MnistBatcher::new(1, 1, 0.0, 1.0 / 255.0);
    EpochLoader::new(
        Arc::new(dataset),
        Arc::new(batcher),
        batch_size,
        Default::default(),
    )
}

fn epoch(loader: &dyn DataLoader<B, SequenceBatch<B>>) -> (Vec<usize>, Vec<u32>) {
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    for batch in loader.iter() {
        let values: Vec<f32> = batch.sequences.into_data().to_vec().unwrap();
        sizes.push(values.len());
        ids.extend(values.iter().map(|v| v.round() as u32));
    }
    (sizes, ids)
}

#[test]
fn unshuffled_loader_keeps_order_and_emits_the_last_partial_batch() {
    let (sizes, ids) = epoch(&loader(4));
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(ids, (0..10).collect::<Vec<u32>>());
}

#[test]
fn shuffled_loader_reshuffles_each_epoch_and_covers_everything() {
    let l = loader(3).shuffled(42);
    let (_, first) = epoch(&l);
    let (_, second) = epoch(&l);
    assert_ne!(first, second);
    for ids in [&first, &second] {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
    }
}

#[test]
fn starting_at_an_epoch_reproduces_that_epoch() {
    let running = loader(3).shuffled(7);
    let orders: Vec<Vec<u32>> = (0..3).map(|_| epoch(&running).1).collect();
    let resumed = loader(3).shuffled(7).starting_at_epoch(3);
    assert_eq!(epoch(&resumed).1, orders[2]);
    // Moving to another device continues the same epoch count.
    let moved = loader(3)
        .shuffled(7)
        .starting_at_epoch(2)
        .to_device(&Default::default());
    assert_eq!(epoch(moved.as_ref()).1, orders[1]);
    assert_eq!(epoch(moved.as_ref()).1, orders[2]);
}

#[test]
fn a_different_seed_gives_a_different_order() {
    assert_ne!(
        epoch(&loader(3).shuffled(1)).1,
        epoch(&loader(3).shuffled(2)).1
    );
}

#[test]
fn the_epoch_hook_runs_on_the_iterating_thread_before_the_first_batch() {
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = calls.clone();
    let hooked = loader(4).starting_at_epoch(3).on_epoch_start(move |epoch| {
        record
            .lock()
            .unwrap()
            .push((epoch, std::thread::current().id()))
    });
    let here = std::thread::current().id();
    let iterator = hooked.iter();
    // Called by `iter` itself, before any batch is drawn.
    assert_eq!(*calls.lock().unwrap(), vec![(3, here)]);
    drop(iterator);
    // Clones for another device share the hook and the epoch count.
    let moved = hooked.to_device(&Default::default());
    epoch(moved.as_ref());
    assert_eq!(*calls.lock().unwrap(), vec![(3, here), (4, here)]);
}
