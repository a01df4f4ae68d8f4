//! A second thread for work too fine for rayon's hand-off: one sequence's steps, a few microseconds
//! each, shared with a thread that meets the caller once a step.
//!
//! Handing a job to a sleeping rayon worker costs tens of microseconds, as much as the steps of a
//! short sequence. This thread watches for work for [`WATCH`] after each job before it sleeps, so
//! calls that follow each other (the layers of a model, the words of a file) find it awake. Its
//! part is only ever help: the caller's own part must finish the work alone when the helper does
//! not come, and [`with_help`] withdraws a job that the helper has not taken when the caller is done.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::null_mut;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long the helper keeps watching for work after its last job before it sleeps.
const WATCH: Duration = Duration::from_micros(500);

/// A job offered to the helper: the work, and whether the helper has finished it.
struct Job<'a> {
    work: &'a (dyn Fn() + Sync),
    finished: AtomicBool,
}

/// The job on offer, or null. Set by a caller of [`with_help`] (from null only: one job at a time),
/// cleared by the helper taking it or by the caller withdrawing it.
static POSTED: AtomicPtr<Job<'static>> = AtomicPtr::new(null_mut());
/// The helper thread, started on first use; `None` where it could not be started.
static HELPER: OnceLock<Option<Thread>> = OnceLock::new();

/// Runs `mine` on this thread while the helper thread may run `theirs` (once, or not at all), and
/// returns when `mine` has returned and the helper is done with `theirs` or never started it.
pub fn with_help(mine: impl FnOnce(), theirs: &(dyn Fn() + Sync)) {
    let helper = HELPER.get_or_init(|| {
        std::thread::Builder::new()
            .name("recurrent-ops-helper".into())
            .spawn(watch)
            .ok()
            .map(|handle| handle.thread().clone())
    });
    let Some(helper) = helper else {
        return mine();
    };
    let job = Job {
        work: theirs,
        finished: AtomicBool::new(false),
    };
    let offered = (&job as *const Job<'_>).cast_mut().cast::<Job<'static>>();
    if POSTED
        .compare_exchange(null_mut(), offered, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another caller's job is on offer: no help this time.
        return mine();
    }
    helper.unpark();
    // Withdraws the job, or waits for the helper to finish it, even if `mine` panics: `job` must
    // outlive the helper's use of it.
    struct Withdraw<'a, 'j> {
        job: &'a Job<'j>,
        offered: *mut Job<'static>,
    }
    impl Drop for Withdraw<'_, '_> {
        fn drop(&mut self) {
            let withdrawn = POSTED
                .compare_exchange(
                    self.offered,
                    null_mut(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            if !withdrawn {
                // Only the helper clears another's job: it took this one.
                wait_until(|| self.job.finished.load(Ordering::Acquire));
            }
        }
    }
    let _withdraw = Withdraw { job: &job, offered };
    mine();
}

/// The helper thread: takes each job offered, runs it, says so; sleeps after [`WATCH`] without one.
fn watch() {
    let mut idle_since = Instant::now();
    let mut polls = 0u32;
    loop {
        let offered = POSTED.load(Ordering::Acquire);
        if !offered.is_null() {
            if POSTED
                .compare_exchange(offered, null_mut(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // SAFETY: the caller that offered the job keeps it alive until it has withdrawn it
                // (it cannot now: the job is no longer on offer) or seen `finished`.
                let job = unsafe { &*offered };
                // A panic in the work (a bug) must still release the caller.
                let _ = catch_unwind(AssertUnwindSafe(job.work));
                job.finished.store(true, Ordering::Release);
                idle_since = Instant::now();
            }
            continue;
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(256) && idle_since.elapsed() > WATCH {
            std::thread::park();
            idle_since = Instant::now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Spins until `ready` (the other thread's part takes microseconds), yielding the core now and then
/// in case the other thread is not running.
#[inline]
pub fn wait_until(ready: impl Fn() -> bool) {
    let mut polls = 0u32;
    while !ready() {
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(4096) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}
