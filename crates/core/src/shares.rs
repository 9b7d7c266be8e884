//! Cameras shared with guests: who may do what to a camera, and the owner's share management.
//!
//! Every camera route asks [`Core::camera_access`] with the action it performs; the rule lives
//! here, not in the handlers. An owner may do everything; a guest what their share's permission
//! allows (`view` < `playback` < `manage`); anyone else gets `NotFound`, so a camera's existence
//! is not revealed. Shares are read from the database on each request, so ending one takes
//! effect on the next request on every node.

use crate::error::ApiError;
use crate::model::{normalize_email, AuditKind, Camera, CameraId, Share, SharePermission, UserId};
use crate::principal::Principal;
use crate::scope::Need;
use crate::Core;

/// What a caller wants to do with a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraAction {
    /// Metadata, snapshot and live stream URLs.
    View,
    /// Recordings.
    Playback,
    /// Change the camera's fields.
    Edit,
    /// Report status (heartbeats): the owner or the camera's own device token.
    Report,
    /// Delete the camera: the owner only.
    Delete,
    /// Create, change or end shares: the owner only.
    Share,
    /// See the camera's shares: the owner, or a `manage` guest.
    ListShares,
}

impl CameraAction {
    fn need(self) -> Need {
        match self {
            Self::View | Self::Playback | Self::ListShares => Need::Read,
            _ => Need::Write,
        }
    }

    /// Whether a guest with `p` may do this.
    fn guest_may(self, p: SharePermission) -> bool {
        match self {
            Self::View => true,
            Self::Playback => p >= SharePermission::Playback,
            Self::Edit | Self::ListShares => p >= SharePermission::Manage,
            Self::Report | Self::Delete | Self::Share => false,
        }
    }
}

/// At most this many shares per camera (each is a row every guest listing reads).
pub const MAX_SHARES_PER_CAMERA: usize = 100;

fn parse_permission(s: &str) -> Result<SharePermission, ApiError> {
    SharePermission::parse(s).ok_or_else(|| {
        ApiError::invalid(
            "permission",
            "`permission` must be one of view, playback, manage.",
        )
    })
}

fn parse_email(s: &str) -> Result<String, ApiError> {
    let e = normalize_email(s);
    let ok = e.len() <= 254
        && !e.contains(char::is_whitespace)
        && !e.contains('\0')
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if ok {
        Ok(e)
    } else {
        Err(ApiError::invalid(
            "email",
            "`email` must be an e-mail address.",
        ))
    }
}

impl Core {
    /// Camera `id` as `p` may act on it with `action`: the camera (with `shared` set for a
    /// guest), `NotFound` if `p` may not see it, `Forbidden` if it may see it but not do this.
    pub async fn camera_access(
        &self,
        p: &Principal,
        id: CameraId,
        action: CameraAction,
    ) -> Result<Camera, ApiError> {
        // A paired device's token acts on its own camera alone, without any scope.
        if let Some(bound) = p.camera {
            if bound != id {
                return Err(ApiError::Forbidden(
                    "This device token is bound to another camera.".into(),
                ));
            }
            if !matches!(action, CameraAction::View | CameraAction::Report) {
                return Err(ApiError::Forbidden(
                    "A device token may only read and report its own camera.".into(),
                ));
            }
            let owner = p.user()?.id;
            return self
                .store
                .camera(owner, id)
                .await?
                .ok_or(ApiError::NotFound);
        }
        p.require(action.need())?;
        let me = p.owner_id().ok_or_else(|| {
            ApiError::Forbidden("This route needs a token issued to a user.".into())
        })?;
        let cam = self
            .store
            .visible_camera(me, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        match &cam.shared {
            None => Ok(cam),
            Some(s) if action.guest_may(s.permission) => Ok(cam),
            Some(s) => Err(ApiError::Forbidden(format!(
                "This camera is shared with you with the `{}` permission, which does not allow this.",
                s.permission.as_str()
            ))),
        }
    }

    /// Marks which of `cams` are shared with `user` (the CAM2 search returns them unmarked).
    pub async fn mark_shared(
        &self,
        user: Option<UserId>,
        cams: &mut [Camera],
    ) -> Result<(), ApiError> {
        let Some(user) = user else { return Ok(()) };
        if cams.iter().all(|c| c.owner_id == user) {
            return Ok(());
        }
        let shares = self.store.shared_with(user).await?;
        if shares.is_empty() {
            return Ok(());
        }
        for c in cams.iter_mut().filter(|c| c.owner_id != user) {
            if let Ok(i) = shares.binary_search_by_key(&c.id, |(id, _)| *id) {
                c.shared = Some(shares[i].1.clone());
            }
        }
        Ok(())
    }

    /// The cameras shared with `user` (the dashboard's "Shared with me").
    pub async fn shared_cameras(&self, user: UserId) -> Result<Vec<Camera>, ApiError> {
        Ok(self.store.shared_cameras(user, 500).await?)
    }

    /// `POST /v1/cameras/{id}/shares/`: the owner shares a camera with an address.
    pub async fn create_share(
        &self,
        p: &Principal,
        camera: CameraId,
        email: &str,
        permission: &str,
    ) -> Result<Share, ApiError> {
        let cam = self.camera_access(p, camera, CameraAction::Share).await?;
        let owner = self.only_owner(&cam)?;
        let email = parse_email(email)?;
        let permission = parse_permission(permission)?;
        if p.user
            .as_ref()
            .is_some_and(|u| normalize_email(&u.email) == email)
        {
            return Err(ApiError::invalid(
                "email",
                "A camera cannot be shared with its owner.",
            ));
        }
        if self.store.shares(camera).await?.len() >= MAX_SHARES_PER_CAMERA {
            return Err(ApiError::invalid(
                "email",
                format!("A camera can be shared with at most {MAX_SHARES_PER_CAMERA} addresses."),
            ));
        }
        let share =
            match self
                .store
                .create_share(owner, camera, &email, permission, self.now())
                .await
            {
                Ok(Some(s)) => s,
                Ok(None) => return Err(ApiError::NotFound),
                Err(crate::error::StoreError::Conflict(_)) => return Err(ApiError::invalid(
                    "email",
                    "This camera is already shared with that address; change that share instead.",
                )),
                Err(e) => return Err(e.into()),
            };
        let mut told = vec![owner];
        told.extend(share.user_id);
        self.notify(
            &told,
            "camera.shared",
            serde_json::json!({
                "camera_id": camera,
                "share_id": share.id,
                "email": share.email,
                "permission": share.permission.as_str(),
            }),
        )
        .await;
        self.audit_act(
            p,
            AuditKind::ShareCreated,
            format!(
                "camera {camera} shared ({}), share {}",
                permission.as_str(),
                share.id
            ),
        )
        .await;
        Ok(share)
    }

    /// The shares of a camera: its owner, or a `manage` guest.
    pub async fn camera_shares(
        &self,
        p: &Principal,
        camera: CameraId,
    ) -> Result<Vec<Share>, ApiError> {
        self.camera_access(p, camera, CameraAction::ListShares)
            .await?;
        Ok(self.store.shares(camera).await?)
    }

    pub async fn update_share(
        &self,
        p: &Principal,
        camera: CameraId,
        share: i64,
        permission: &str,
    ) -> Result<Share, ApiError> {
        let cam = self.camera_access(p, camera, CameraAction::Share).await?;
        self.only_owner(&cam)?;
        let permission = parse_permission(permission)?;
        let s = self
            .store
            .update_share(camera, share, permission, self.now())
            .await?
            .ok_or(ApiError::NotFound)?;
        self.audit_act(
            p,
            AuditKind::ShareChanged,
            format!("camera {camera} share {share} now {}", permission.as_str()),
        )
        .await;
        Ok(s)
    }

    pub async fn delete_share(
        &self,
        p: &Principal,
        camera: CameraId,
        share: i64,
    ) -> Result<(), ApiError> {
        let cam = self.camera_access(p, camera, CameraAction::Share).await?;
        self.only_owner(&cam)?;
        if !self.store.delete_share(camera, share).await? {
            return Err(ApiError::NotFound);
        }
        self.audit_act(
            p,
            AuditKind::ShareEnded,
            format!("camera {camera} share {share} ended"),
        )
        .await;
        Ok(())
    }

    /// The owner's id of a camera the caller owns (`camera_access` already refused guests for
    /// owner-only actions; this keeps the rule explicit).
    fn only_owner(&self, cam: &Camera) -> Result<UserId, ApiError> {
        match cam.shared {
            None => Ok(cam.owner_id),
            Some(_) => Err(ApiError::Forbidden(
                "Only the camera's owner may do this.".into(),
            )),
        }
    }
}
