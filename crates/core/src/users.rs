//! User accounts: creation (CLI, demo, admin) and password changes.

use crate::error::ApiError;
use crate::model::{normalize_email, AuditKind, NewUser, User};
use crate::Core;

#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub is_admin: bool,
    /// The address is known to be the user's (OIDC `email_verified`).
    pub email_verified: bool,
}

/// A deliberately small email check: one `@`, something on each side, no spaces, bounded.
pub fn validate_email(email: &str) -> Result<(), ApiError> {
    let e = email.trim();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("email", "Enter a valid email address."))
    }
}

pub fn validate_password(pw: &str) -> Result<(), ApiError> {
    if pw.is_empty() {
        return Err(ApiError::invalid(
            "password",
            "The password must not be empty.",
        ));
    }
    if pw.len() > 1024 {
        return Err(ApiError::invalid(
            "password",
            "The password is too long (1024 bytes at most).",
        ));
    }
    Ok(())
}

impl Core {
    pub async fn create_user(&self, input: UserInput) -> Result<User, ApiError> {
        let new = self.prepare_user(input).await?;
        self.insert_user(new).await
    }

    /// Creates several accounts, hashing their passwords side by side (one per core at most)
    /// and storing them in the given order, so their ids keep that order. An input refused by
    /// validation stores none of them; a conflict while storing keeps those stored before it.
    pub async fn create_users(&self, inputs: Vec<UserInput>) -> Result<Vec<User>, ApiError> {
        crate::password::hash_then_store(
            inputs,
            |i| self.prepare_user(i),
            |new| self.insert_user(new),
        )
        .await
    }

    async fn insert_user(&self, new: NewUser) -> Result<User, ApiError> {
        self.store.create_user(&new).await.map_err(|e| match e {
            crate::error::StoreError::Conflict(_) => {
                ApiError::Conflict("A user with this email already exists.".into())
            }
            other => other.into(),
        })
    }

    /// Validates a new account and hashes its password.
    pub(crate) async fn prepare_user(&self, input: UserInput) -> Result<NewUser, ApiError> {
        validate_email(&input.email)?;
        validate_password(&input.password)?;
        for (field, v) in [
            ("first_name", &input.first_name),
            ("last_name", &input.last_name),
            ("phone", &input.phone),
        ] {
            if v.chars().count() > 150 {
                return Err(ApiError::invalid(field, "At most 150 characters."));
            }
            if v.contains('\0') {
                return Err(ApiError::invalid(field, "Must not contain NUL characters."));
            }
        }
        let hash = self
            .hasher
            .hash(input.password)
            .await
            .map_err(|e| match e {
                crate::password::HashError::Busy => ApiError::Unavailable { retry_after: 1 },
                crate::password::HashError::Failed => ApiError::Internal,
            })?;
        Ok(NewUser {
            email: input.email.trim().to_string(),
            password_hash: hash,
            first_name: input.first_name,
            last_name: input.last_name,
            phone: input.phone,
            is_admin: input.is_admin,
            created_at: self.now(),
            email_verified: input.email_verified,
        })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, ApiError> {
        Ok(self.store.user_by_email(&normalize_email(email)).await?)
    }

    /// Changes a password; every token family and PAT of the user is revoked with it.
    pub async fn change_password(
        &self,
        user_id: i64,
        new_password: String,
    ) -> Result<(), ApiError> {
        validate_password(&new_password)?;
        let hash = self
            .hasher
            .hash(new_password)
            .await
            .map_err(|_| ApiError::Unavailable { retry_after: 1 })?;
        if !self.store.set_password(user_id, &hash, self.now()).await? {
            return Err(ApiError::NotFound);
        }
        self.audit(AuditKind::PasswordChanged, Some(user_id), None, None, "")
            .await;
        Ok(())
    }

    /// Disables (or re-enables) an account: its tokens, PATs and sessions stop working at the
    /// next request, on every node, because every lookup checks the flag.
    pub async fn set_user_disabled(&self, user_id: i64, disabled: bool) -> Result<(), ApiError> {
        if self.store.set_user_disabled(user_id, disabled).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// Deletes the caller's own account (Angelcam `DELETE /v1/me/`).
    pub async fn delete_user(&self, user_id: i64) -> Result<(), ApiError> {
        if self.store.delete_user(user_id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }
}
