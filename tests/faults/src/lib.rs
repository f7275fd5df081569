//! The fault-injection suite of issue 31 (README "Reliability"): two test
//! hosts of the API on their own MariaDB, Redis and S3 store, under steady
//! mixed load while those are killed, frozen and restarted one after
//! another; then the invariants, checked from MySQL, the bucket and the
//! webhook receiver. The binary is `faults`; `scripts/faults` runs it.

// As every crate of the workspace: byte-offset slicing of text panics on
// multi-byte characters.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod invariants;
pub mod journal;
pub mod load;
pub mod processes;
pub mod report;
pub mod rng;
pub mod snapshot;
pub mod suite;
