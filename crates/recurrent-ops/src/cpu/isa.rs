//! Which instruction set the CPU kernels run on. Every choice gives the same bits: every product
//! (per step and general) is a chain of fused multiply-adds on every path (the portable one through
//! [`f32::mul_add`], which rounds once as the hardware instruction does), and the element-wise
//! passes are the same plain IEEE operations everywhere (the wider paths only widen the vectors). The choice is detected once;
//! [`set_instruction_set`] overrides it, so tests can run each path the machine has and compare.

use std::sync::atomic::{AtomicU8, Ordering};

/// A code path of the CPU kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstructionSet {
    /// AVX-512F: products and element-wise passes.
    Avx512,
    /// AVX2 with FMA: products and element-wise passes.
    Avx2Fma,
    /// Any CPU: scalar fused multiply-adds ([`f32::mul_add`]) in the products, baseline vectors
    /// elsewhere. Slow products on a CPU without FMA, the same bits everywhere.
    Portable,
}

impl InstructionSet {
    /// Every path, fastest first.
    pub const ALL: [InstructionSet; 3] = [Self::Avx512, Self::Avx2Fma, Self::Portable];

    /// The paths this CPU can run, fastest first (`Portable` always).
    pub fn available() -> Vec<InstructionSet> {
        Self::ALL
            .into_iter()
            .filter(|set| set.is_available())
            .collect()
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                std::is_x86_feature_detected!("avx512f") && Self::Avx2Fma.is_available()
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 | Self::Avx2Fma => false,
            Self::Portable => true,
        }
    }

    /// Lower-case name, as `bench` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2Fma => "avx2-fma",
            Self::Portable => "portable",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Avx512 => 1,
            Self::Avx2Fma => 2,
            Self::Portable => 3,
        }
    }
}

impl std::fmt::Display for InstructionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// [`set_instruction_set`] was asked for a path this CPU cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable(pub InstructionSet);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this CPU cannot run the {} kernels; it runs: {}",
            self.0,
            InstructionSet::available()
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl std::error::Error for Unavailable {}

/// Tests that choose the instruction set hold this lock, so that they run one at a time (the choice
/// is process-wide; the bits do not depend on it, so other tests are unaffected).
#[cfg(test)]
pub static CHOICE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// 0: not forced (the fastest available); otherwise [`InstructionSet::code`].
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Runs the CPU kernels of the whole process on `set` from now on, or on the fastest available path
/// again with `None`. The bits do not change; only the speed does.
pub fn set_instruction_set(set: Option<InstructionSet>) -> Result<(), Unavailable> {
    match set {
        Some(set) if !set.is_available() => Err(Unavailable(set)),
        Some(set) => {
            FORCED.store(set.code(), Ordering::Relaxed);
            Ok(())
        }
        None => {
            FORCED.store(0, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// The path the kernels run on now.
pub fn instruction_set() -> InstructionSet {
    match FORCED.load(Ordering::Relaxed) {
        1 => InstructionSet::Avx512,
        2 => InstructionSet::Avx2Fma,
        3 => InstructionSet::Portable,
        _ => detected(),
    }
}

fn detected() -> InstructionSet {
    static DETECTED: std::sync::OnceLock<InstructionSet> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(|| InstructionSet::available()[0])
}
