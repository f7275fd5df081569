//! Uploads as data, and the pure rules about them that both the MySQL
//! repository ([`crate::sql`]) and the in-memory fake ([`crate::repo`])
//! apply, so the unit tests of the rules cover what production runs.
//!
//! * [`uploads`] — visibility, an upload's metadata, a pending direct
//!   upload, and what storing or deleting one did.
//! * [`quota`] — how much one user may hold: stored bytes, pending
//!   announcements, and how many announcements at once.

mod quota;
mod uploads;

pub use quota::*;
pub use uploads::*;

#[cfg(test)]
mod tests;
