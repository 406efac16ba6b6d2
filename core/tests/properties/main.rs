//! Property tests of `weft-core`, through its public API only (and the in-memory
//! [`Pair`] of `weft_core::testing`, which the unit tests drive too).
//!
//! Each `#[test]` runs one property with quickcheck over a moderate number of
//! generated cases. The wire-format properties (1, 2, 3, 6, 8) exercise the codecs
//! directly; the others drive real [`Connection`]s in memory on a fixed clock. One
//! file per thing checked: `codec` (the codecs alone), `receive` (a connection
//! given any input), `commands` (a connection given any command); `gen`, `model`
//! and `records` are what they share, and the runner below is the one place a
//! seed is chosen.
//!
//! # Reproducing a failure
//!
//! quickcheck 1.1 has no seed environment variable of its own, but it accepts a
//! seeded generator (`QuickCheck::rng(Gen::from_size_and_seed(..))`). Every property
//! here picks a fresh random seed, prints it, and appends it to the failure message;
//! rerun a failure deterministically with
//!
//! ```text
//! WEFT_QC_SEED=<seed> cargo test -p weft-core --test properties <test name>
//! ```
//!
//! quickcheck also prints the (shrunk) failing input. `QUICKCHECK_TESTS=<n>`
//! overrides every property's case count and `QUICKCHECK_GENERATOR_SIZE=<n>` the
//! generator size (default 100).

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult, Testable};
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use weft_core::conn::{Connection, Event, Side, Stats};
use weft_core::integrity::header_check;
use weft_core::testing::{closed, collect, feed, flush, seal, Got, Pair, SERVER_SEED};
use weft_core::time::Instant;
use weft_core::varint::{self, VarintError};
use weft_core::wire::frame::{self, ty, Frame, FrameError, Status};
use weft_core::wire::params::Params;
use weft_core::wire::preface::{self, Preface};
use weft_core::wire::record;
use weft_core::{Config, ErrorCode, OverflowPolicy, Priority, RequestId, Role, SubId};

use gen::*;
use model::*;
use records::*;

/// The fixed clock: the instant a [`Pair`] starts at.
const NOW: Instant = weft_core::testing::START;

// ===================================================================================
// Running properties reproducibly
// ===================================================================================

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn fresh_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Runs `prop` for `tests` passing cases with a printed, overridable seed.
fn check<A: Testable>(name: &str, tests: u64, prop: A) {
    let seed = env_num("WEFT_QC_SEED").unwrap_or_else(fresh_seed);
    let size = env_num("QUICKCHECK_GENERATOR_SIZE").unwrap_or(100) as usize;
    let tests = env_num("QUICKCHECK_TESTS").unwrap_or(tests);
    eprintln!("[{name}] {tests} cases, seed {seed} (rerun: WEFT_QC_SEED={seed})");
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(size, seed))
            .tests(tests)
            .max_tests(tests * 20)
            .quickcheck(prop)
    }));
    if let Err(e) = run {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{msg}\n[{name}] reproduce with WEFT_QC_SEED={seed}");
    }
}

/// `Err(message)` as a failed case with that message.
type Check = Result<(), String>;

fn verdict(r: Check) -> TestResult {
    match r {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod codec;
mod commands;
mod gen;
mod model;
mod receive;
mod records;
