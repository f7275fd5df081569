//! The orders component (work in progress).
