//! Who is calling a resource route: the authenticated principal and the credential it
//! presented. A bottom-level type shared by resource authentication, JWT verification,
//! revocation and the camera use cases.

use crate::error::ApiError;
use crate::model::{ClientRef, User, UserId};
use crate::scope::{Need, ScopeSet};

/// How the caller authenticated (what logout and revocation act on).
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialKind {
    /// An OAuth access token, by family (for logout) and digest.
    Access {
        family_id: i64,
        hash: Vec<u8>,
        expires_at: i64,
        created_at: i64,
    },
    Pat {
        id: i64,
    },
    /// A JWT access token (RFC 9068), by `jti` (for logout through the denylist).
    Jwt {
        jti: String,
        expires_at: i64,
    },
    /// The user's own browser session (the dashboard): the account's full camera rights.
    Session,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Option<User>,
    pub client: Option<ClientRef>,
    pub scopes: ScopeSet,
    pub credential: CredentialKind,
    /// A paired device's token: bound to this camera, and to nothing else.
    pub camera: Option<crate::model::CameraId>,
    /// A token-exchange token: the dealer acting for `user` (RFC 8693 §4.1 `act`).
    pub actor: Option<UserId>,
}

impl Principal {
    /// The signed-in user of a browser session, acting on their own account.
    pub fn session(user: User) -> Principal {
        Principal {
            user: Some(user),
            client: None,
            scopes: ScopeSet::READ_WRITE,
            credential: CredentialKind::Session,
            camera: None,
            actor: None,
        }
    }

    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        if self.scopes.allows(need) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(need.name()))
        }
    }

    /// The user acting, for routes about "me" (a client-credentials token has none).
    pub fn user(&self) -> Result<&User, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::Forbidden("This route needs a token issued to a user.".into()))
    }

    /// Whose cameras this caller sees: the user, or for a client token the client's owner.
    pub fn owner_id(&self) -> Option<UserId> {
        self.user
            .as_ref()
            .map(|u| u.id)
            .or(self.client.as_ref().and_then(|c| c.owner_id))
    }
}
