//! Who a token speaks for: the user's [`Role`], the [`Claims`] an access
//! token carries, and the [`Principal`] a handler gets once those claims are
//! verified and not revoked. Plain data, so every other part of `auth` (and
//! every handler) can depend on it without pulling in tokens or storage.

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary account.
    User,
    /// May read and change every account, product and order.
    Admin,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or requested role name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token (docs/API.md: `sub`, `role`, `jti`, `iat`, `exp`,
/// `iss`, `aud`; plus `sid`, the login session, so logout can end its refresh token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Unique token id, for the deny-list.
    pub jti: String,
    /// The login session this token belongs to.
    pub sid: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Who is calling, once their token has been verified and checked for revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id.
    pub user_id: String,
    /// Their role.
    pub role: Role,
    /// The verified claims.
    pub claims: Claims,
}

impl Principal {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// True when the caller is `user_id` or an admin.
    pub fn may_access_user(&self, user_id: &str) -> bool {
        self.is_admin() || self.user_id == user_id
    }
}

#[cfg(test)]
mod tests;
