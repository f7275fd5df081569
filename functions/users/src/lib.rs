//! The users component (work in progress).
