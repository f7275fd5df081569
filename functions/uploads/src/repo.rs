//! The repository port of the uploads component, and its in-memory fake.
//!
//! Every method that changes something is atomic: the MySQL implementation
//! ([`crate::sql::SqlUploads`]) runs it in one transaction, the fake under
//! one lock. Both store bytes once per distinct content and apply the same
//! quota rules ([`crate::model::check_quota`],
//! [`crate::model::check_pending_cap`]).

use shared::domain::Pagination;
use shared::ApiError;

#[cfg(any(test, feature = "testing"))]
use crate::model::{check_pending_cap, check_quota, Usage};
use crate::model::{Content, Deleted, NewBytes, Pending, Stored, Upload};

/// The storage operations the handlers need.
pub trait UploadRepo {
    /// Stores `upload` and, unless the same content is already stored, a
    /// blob for `bytes` — or nothing, with 409 `quota_exceeded`, when the
    /// owner's uploads and pending uploads would then add up to more than
    /// `quota_bytes`.
    fn create(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        quota_bytes: u64,
    ) -> Result<Stored, ApiError>;
    /// Records a direct upload — or nothing: 409 `quota_exceeded`, as
    /// [`UploadRepo::create`], or 429 `too_many_attempts` while the owner
    /// already has [`crate::model::MAX_PENDING_PER_USER`] unexpired
    /// announcements.
    fn announce(&self, pending: &Pending, quota_bytes: u64) -> Result<(), ApiError>;
    /// The pending upload with this id.
    fn find_pending(&self, id: &str) -> Result<Option<Pending>, ApiError>;
    /// Makes `pending` live as `upload`, whose bytes are the object `key`,
    /// sharing an existing blob of the same content if there is one; 404
    /// when another request completed or discarded it first.
    fn complete(&self, pending: &Pending, upload: &Upload, key: &str) -> Result<Stored, ApiError>;
    /// Forgets a pending upload; false when it was already gone.
    fn discard(&self, id: &str) -> Result<bool, ApiError>;
    /// The upload with this id.
    fn find(&self, id: &str) -> Result<Option<Upload>, ApiError>;
    /// One page of `user_id`'s uploads, newest first, and their total count.
    fn list_for_user(
        &self,
        user_id: &str,
        page: Pagination,
    ) -> Result<(Vec<Upload>, u64), ApiError>;
    /// Where the bytes of the upload with this id are, if it still exists.
    fn content(&self, id: &str) -> Result<Option<Content>, ApiError>;
    /// Deletes `upload`, and its blob when no other upload references it.
    fn delete(&self, upload: &Upload) -> Result<Deleted, ApiError>;
}

/// In-memory [`UploadRepo`] for unit tests, with the same
/// content-addressing and quota rules, and a switch to make every call fail.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemoryUploads {
    state: std::sync::Mutex<MemoryState>,
    /// When set, every call fails with this error.
    pub fail_with: Option<ApiError>,
}

/// The fake's tables.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
struct MemoryState {
    uploads: Vec<Upload>,
    pending: Vec<Pending>,
    blobs: std::collections::HashMap<String, Content>,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryState {
    /// What `user_id` holds against the quota at `now_ms`.
    fn usage(&self, user_id: &str, now_ms: i64) -> Usage {
        Usage {
            stored_bytes: self
                .uploads
                .iter()
                .filter(|u| u.user_id == user_id)
                .map(|u| u.size)
                .fold(0, u64::saturating_add),
            pending_bytes: self
                .live_pending(user_id, now_ms)
                .map(|p| p.size)
                .fold(0, u64::saturating_add),
        }
    }

    /// `user_id`'s announcements that still hold room at `now_ms`.
    fn live_pending<'a>(
        &'a self,
        user_id: &'a str,
        now_ms: i64,
    ) -> impl Iterator<Item = &'a Pending> + 'a {
        self.pending
            .iter()
            .filter(move |p| p.user_id == user_id && p.holds_room_at(now_ms))
    }

    fn place_blob(&mut self, sha256: &str, bytes: NewBytes) -> Stored {
        if self.blobs.contains_key(sha256) {
            return Stored::Shared;
        }
        let content = match bytes {
            NewBytes::Inline(b) => Content::Inline(b.to_vec()),
            NewBytes::Object(key) => Content::Object(key.to_string()),
            NewBytes::Absent => return Stored::NeedsBytes,
        };
        self.blobs.insert(sha256.to_string(), content);
        Stored::NewBlob
    }
}

#[cfg(any(test, feature = "testing"))]
impl MemoryUploads {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, ApiError> {
        if let Some(e) = &self.fail_with {
            return Err(e.clone());
        }
        Ok(self.tables())
    }

    /// The tables, whatever `fail_with` says (for assertions). A test that
    /// panicked under the lock left them consistent: each change is made
    /// whole before the guard drops.
    fn tables(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored metadata rows.
    pub fn rows(&self) -> Vec<Upload> {
        self.tables().uploads.clone()
    }

    /// The pending direct uploads.
    pub fn pending(&self) -> Vec<Pending> {
        self.tables().pending.clone()
    }

    /// Number of stored blobs.
    pub fn blob_count(&self) -> usize {
        self.tables().blobs.len()
    }

    /// Where the blob of this content is.
    pub fn blob(&self, sha256: &str) -> Option<Content> {
        self.tables().blobs.get(sha256).cloned()
    }
}

#[cfg(any(test, feature = "testing"))]
impl UploadRepo for MemoryUploads {
    fn create(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        quota_bytes: u64,
    ) -> Result<Stored, ApiError> {
        let mut s = self.lock()?;
        check_quota(
            s.usage(&upload.user_id, upload.created_at_ms),
            upload.size,
            quota_bytes,
        )?;
        let stored = s.place_blob(&upload.sha256, bytes);
        if stored != Stored::NeedsBytes {
            s.uploads.push(upload.clone());
        }
        Ok(stored)
    }

    fn announce(&self, pending: &Pending, quota_bytes: u64) -> Result<(), ApiError> {
        let mut s = self.lock()?;
        let now = pending.created_at_ms;
        check_quota(s.usage(&pending.user_id, now), pending.size, quota_bytes)?;
        let held: Vec<i64> = s
            .live_pending(&pending.user_id, now)
            .map(|p| p.expires_at_ms)
            .collect();
        let oldest = held.iter().copied().min().unwrap_or_default();
        check_pending_cap(held.len() as u64, oldest, now)?;
        s.pending.push(pending.clone());
        Ok(())
    }

    fn find_pending(&self, id: &str) -> Result<Option<Pending>, ApiError> {
        Ok(self.lock()?.pending.iter().find(|p| p.id == id).cloned())
    }

    fn complete(&self, pending: &Pending, upload: &Upload, key: &str) -> Result<Stored, ApiError> {
        let mut s = self.lock()?;
        let before = s.pending.len();
        s.pending.retain(|p| p.id != pending.id);
        if s.pending.len() == before {
            return Err(ApiError::NotFound);
        }
        let stored = s.place_blob(&upload.sha256, NewBytes::Object(key));
        s.uploads.push(upload.clone());
        Ok(stored)
    }

    fn discard(&self, id: &str) -> Result<bool, ApiError> {
        let mut s = self.lock()?;
        let before = s.pending.len();
        s.pending.retain(|p| p.id != id);
        Ok(s.pending.len() < before)
    }

    fn find(&self, id: &str) -> Result<Option<Upload>, ApiError> {
        Ok(self.lock()?.uploads.iter().find(|u| u.id == id).cloned())
    }

    fn list_for_user(
        &self,
        user_id: &str,
        page: Pagination,
    ) -> Result<(Vec<Upload>, u64), ApiError> {
        let s = self.lock()?;
        let mut own: Vec<Upload> = s
            .uploads
            .iter()
            .filter(|u| u.user_id == user_id)
            .cloned()
            .collect();
        own.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        let total = own.len() as u64;
        let items = own
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit as usize)
            .collect();
        Ok((items, total))
    }

    fn content(&self, id: &str) -> Result<Option<Content>, ApiError> {
        let s = self.lock()?;
        Ok(s.uploads
            .iter()
            .find(|u| u.id == id)
            .and_then(|u| s.blobs.get(&u.sha256).cloned()))
    }

    fn delete(&self, upload: &Upload) -> Result<Deleted, ApiError> {
        let mut s = self.lock()?;
        let before = s.uploads.len();
        s.uploads.retain(|u| u.id != upload.id);
        if s.uploads.len() == before {
            return Ok(Deleted::Missing);
        }
        if s.uploads.iter().any(|u| u.sha256 == upload.sha256) {
            return Ok(Deleted::Gone { freed_object: None });
        }
        let freed_object = match s.blobs.remove(&upload.sha256) {
            Some(Content::Object(key)) => Some(key),
            _ => None,
        };
        Ok(Deleted::Gone { freed_object })
    }
}
