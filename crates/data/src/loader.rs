//! A data loader whose shuffle depends only on (seed, epoch), so that a resumed run sees exactly the
//! batches an uninterrupted run would have seen.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Called with an epoch's number (1-based) when iteration over that epoch begins.
type EpochHook = Arc<dyn Fn(usize) + Send + Sync>;

/// Batches a dataset in order, or in an order reshuffled every epoch from `(seed, epoch)`.
///
/// Burn's own loader draws each epoch's order from one running RNG, so skipping epochs on resume
/// changes every later order; here epoch `e`'s order is a pure function of the seed and `e`.
pub struct EpochLoader<B: Backend, I, O> {
    dataset: Arc<dyn Dataset<I>>,
    batcher: Arc<dyn Batcher<B, I, O>>,
    batch_size: usize,
    shuffle_seed: Option<u64>,
    /// Each item's sequence length, when batches are to hold sequences of similar length.
    lengths: Option<Arc<Vec<usize>>>,
    /// The epoch the next call to `iter` serves (1-based), shared by clones made with `to_device`.
    next_epoch: Arc<AtomicUsize>,
    on_epoch_start: Option<EpochHook>,
    device: B::Device,
    _output: PhantomData<fn() -> O>,
}

impl<B, I, O> EpochLoader<B, I, O>
where
    B: Backend,
    I: Send + Sync + 'static,
    O: Send + 'static,
{
    /// A loader of `batch_size` batches (the last one may be smaller) on `device`, starting at epoch 1.
    ///
    /// # Panics
    /// If `batch_size` is 0 (configs are validated before they get here).
    pub fn new(
        dataset: Arc<dyn Dataset<I>>,
        batcher: Arc<dyn Batcher<B, I, O>>,
        batch_size: usize,
        device: B::Device,
    ) -> Self {
        assert!(batch_size > 0, "batch size must be at least 1");
        Self {
            dataset,
            batcher,
            batch_size,
            shuffle_seed: None,
            lengths: None,
            next_epoch: Arc::new(AtomicUsize::new(1)),
            on_epoch_start: None,
            device,
            _output: PhantomData,
        }
    }

    /// Reshuffle every epoch, from `seed` and the epoch number.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }

    /// Make the next `iter` serve epoch `epoch` (1-based): resuming after epoch `k` starts at `k + 1`.
    pub fn starting_at_epoch(self, epoch: usize) -> Self {
        self.next_epoch.store(epoch, Ordering::SeqCst);
        self
    }

    /// Call `hook(epoch)` at the start of every epoch, on the thread that iterates and before the
    /// epoch's first batch: per-epoch work that must happen in step with training (seeding its random
    /// draws) rather than whenever another thread gets to it.
    pub fn on_epoch_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_epoch_start = Some(Arc::new(hook));
        self
    }

    /// Batches of sequences of similar length, from each item's length (`lengths[i]` of item `i`):
    /// the epoch's order is cut into pools of [`POOL_BATCHES`](Self::POOL_BATCHES) batches, each pool
    /// sorted by length and cut into batches, and (when shuffled) the full batches are shuffled too.
    /// A padded batch then costs little more than its sequences.
    pub fn grouped_by_length(mut self, lengths: Vec<usize>) -> Self {
        assert_eq!(
            lengths.len(),
            self.dataset.len(),
            "one length per item of the dataset"
        );
        self.lengths = Some(Arc::new(lengths));
        self
    }

    /// Batches per pool sorted by length (see [`grouped_by_length`](Self::grouped_by_length)).
    pub const POOL_BATCHES: usize = 16;

    /// The item order of `epoch`.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        let epoch_seed = self
            .shuffle_seed
            .map(|seed| seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if let Some(seed) = epoch_seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        let Some(lengths) = &self.lengths else {
            return order;
        };
        for pool in order.chunks_mut(self.batch_size * Self::POOL_BATCHES) {
            // Stable: equal lengths keep the shuffled order.
            pool.sort_by_key(|&i| lengths[i]);
        }
        let full = order.len() / self.batch_size * self.batch_size;
        let mut batches: Vec<&[usize]> = order[..full].chunks(self.batch_size).collect();
        if let Some(seed) = epoch_seed {
            batches.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(1)));
        }
        let mut grouped: Vec<usize> = batches.concat();
        grouped.extend_from_slice(&order[full..]);
        grouped
    }

    fn with_parts(&self, dataset: Arc<dyn Dataset<I>>, device: B::Device) -> Self {
        Self {
            dataset,
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            shuffle_seed: self.shuffle_seed,
            lengths: self.lengths.clone(),
            next_epoch: self.next_epoch.clone(),
            on_epoch_start: self.on_epoch_start.clone(),
            device,
            _output: PhantomData,
        }
    }
}

impl<B, I, O> DataLoader<B, O> for EpochLoader<B, I, O>
where
    B: Backend,
    I: Send + Sync + 'static,
    O: Send + 'static,
{
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(hook) = &self.on_epoch_start {
            hook(epoch);
        }
        Box::new(EpochIter {
            loader: self,
            order: self.order(epoch),
            position: 0,
        })
    }

    fn num_items(&self) -> usize {
        self.dataset.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, O>> {
        Arc::new(self.with_parts(self.dataset.clone(), device.clone()))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, O>> {
        let part = Arc::new(Slice {
            inner: self.dataset.clone(),
            start,
            end: end.min(self.dataset.len()),
        });
        let mut loader = self.with_parts(part, self.device.clone());
        loader.lengths = self
            .lengths
            .as_ref()
            .map(|l| Arc::new(l[start.min(l.len())..end.min(l.len())].to_vec()));
        Arc::new(loader)
    }
}

struct EpochIter<'a, B: Backend, I, O> {
    loader: &'a EpochLoader<B, I, O>,
    order: Vec<usize>,
    position: usize,
}

impl<B: Backend, I, O> Iterator for EpochIter<'_, B, I, O> {
    type Item = O;

    fn next(&mut self) -> Option<O> {
        let end = (self.position + self.loader.batch_size).min(self.order.len());
        if self.position >= end {
            return None;
        }
        let items: Vec<I> = self.order[self.position..end]
            .iter()
            .filter_map(|&i| self.loader.dataset.get(i))
            .collect();
        self.position = end;
        Some(self.loader.batcher.batch(items, &self.loader.device))
    }
}

impl<B: Backend, I, O> DataLoaderIterator<O> for EpochIter<'_, B, I, O> {
    fn progress(&self) -> Progress {
        Progress::new(self.position, self.order.len())
    }
}

/// Items `start..end` of another dataset.
struct Slice<I> {
    inner: Arc<dyn Dataset<I>>,
    start: usize,
    end: usize,
}

impl<I> Dataset<I> for Slice<I> {
    fn get(&self, index: usize) -> Option<I> {
        (self.start + index < self.end)
            .then(|| self.inner.get(self.start + index))
            .flatten()
    }

    fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }
}
