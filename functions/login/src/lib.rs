//! The login component (work in progress).
