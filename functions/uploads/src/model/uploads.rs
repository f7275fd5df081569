//! What an upload is once accepted: its metadata, where its bytes are, and
//! the outcomes of storing and deleting it. Bytes are content-addressed: an
//! upload names its content by SHA-256, and uploads of the same content share
//! one blob.

use serde::{Deserialize, Serialize};

/// Who may read an upload's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the owner and admins.
    Private,
    /// Anyone, without a token; cacheable by CDNs.
    Public,
}

impl Visibility {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    /// Parses `private` or `public`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Visibility::Private),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// An upload's metadata (the bytes live in the blob its `sha256` names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Opaque id.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Sanitised filename.
    pub filename: String,
    /// Detected type, e.g. `image/png`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Who may read the content.
    pub visibility: Visibility,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
}

/// A direct upload announced by `presign` and not yet completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The id the upload keeps once completed.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Sanitised filename.
    pub filename: String,
    /// Announced size in bytes.
    pub size: u64,
    /// Announced SHA-256, lower-case hex.
    pub sha256: String,
    /// Who may read the content once live.
    pub visibility: Visibility,
    /// Where the client puts the bytes.
    pub object_key: String,
    /// Announcement time, epoch milliseconds.
    pub created_at_ms: i64,
    /// After this the announcement no longer counts and cannot be completed.
    pub expires_at_ms: i64,
}

impl Pending {
    /// Whether the announcement still holds room (against the quota and the
    /// per-user cap) at `now_ms`. The MySQL repository says the same in SQL
    /// (`expires_at_ms > ?`).
    pub fn holds_room_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}

/// Where a new upload's bytes are, for the blob row if its content is new.
#[derive(Debug, Clone, Copy)]
pub enum NewBytes<'a> {
    /// In hand: stored in MySQL.
    Inline(&'a [u8]),
    /// Already in the object store under this key.
    Object(&'a str),
    /// Nowhere yet: the upload can only share an existing blob.
    Absent,
}

/// What storing an upload did with its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Its bytes became a new blob.
    NewBlob,
    /// The same content was already stored; the upload shares that blob (an
    /// object the caller put for it is now unreferenced).
    Shared,
    /// [`NewBytes::Absent`] and no blob has this content: nothing was stored.
    NeedsBytes,
}

/// Where an upload's bytes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The bytes, from MySQL.
    Inline(Vec<u8>),
    /// The key of the object holding them.
    Object(String),
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The upload was already gone.
    Missing,
    /// The upload is gone; `freed_object` names the object nothing refers
    /// to any more (to be deleted from the store after the commit).
    Gone {
        /// The object of a blob that was deleted with its last reference.
        freed_object: Option<String>,
    },
}
