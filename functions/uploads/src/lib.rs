//! The uploads component (work in progress).
