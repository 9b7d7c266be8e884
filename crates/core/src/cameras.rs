//! Cameras: validation, partial update, pagination. Every dialect's camera routes call these.

use crate::error::ApiError;
use crate::model::{
    Camera, CameraFields, CameraId, CameraStatus, Snapshot, Stream, UserId, VideoCodec,
};
use crate::principal::Principal;
use crate::shares::CameraAction;
use crate::store::{PairedDevice, PendingPairing};
use crate::Core;

/// Default and maximum page size of the Angelcam listing.
pub const PAGE_MAX: i64 = 100;

/// A page request after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
    /// Keyset position: the page starts after this camera id (the `next` links carry it, so a
    /// deep page costs what the first one does). `offset` still numbers the page.
    pub after: Option<CameraId>,
}

impl Page {
    /// Parses `limit` / `offset` query values. Absent: limit = max, offset = 0. A limit above
    /// the maximum is clamped to it (as django-rest-framework does); a value that is not a
    /// whole number, a limit below 1 or a negative offset is an error naming the parameter.
    pub fn parse(limit: Option<&str>, offset: Option<&str>, max: i64) -> Result<Page, ApiError> {
        let limit = match limit {
            None => max,
            Some(s) => match s.trim().parse::<i64>() {
                Ok(n) if n >= 1 => n.min(max),
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        "`limit` must be a whole number of at least 1.",
                    ))
                }
            },
        };
        let offset = match offset {
            None => 0,
            Some(s) => match s.trim().parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => {
                    return Err(ApiError::invalid(
                        "offset",
                        "`offset` must be a whole number of at least 0.",
                    ))
                }
            },
        };
        Ok(Page {
            limit,
            offset,
            after: None,
        })
    }

    /// Adds the `after` query value (a camera id, from a `next` link).
    pub fn with_after(mut self, after: Option<&str>) -> Result<Page, ApiError> {
        self.after = match after {
            None => None,
            Some(s) => match s.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    return Err(ApiError::invalid(
                        "after",
                        "`after` must be a camera id (a whole number of at least 0).",
                    ))
                }
            },
        };
        Ok(self)
    }

    /// Offset of the next page, if there is one.
    pub fn next(&self, count: i64) -> Option<i64> {
        let n = self.offset.saturating_add(self.limit);
        (n < count).then_some(n)
    }

    /// Offset of the previous page, if there is one.
    pub fn previous(&self) -> Option<i64> {
        (self.offset > 0).then(|| (self.offset - self.limit).max(0))
    }
}

/// A partial camera update: `None` leaves a field as it is. For nullable fields,
/// `Some(None)` clears them.
#[derive(Debug, Clone, Default)]
pub struct CameraPatch {
    pub name: Option<String>,
    pub codec: Option<String>,
    pub status: Option<String>,
    pub streams: Option<Vec<Stream>>,
    pub snapshot: Option<Option<Snapshot>>,
    pub city: Option<Option<String>>,
    pub state: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub lat: Option<Option<f64>>,
    pub lng: Option<Option<f64>>,
    pub description: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub is_public: Option<bool>,
}

fn text(field: &str, v: &Option<String>, max: usize) -> Result<(), ApiError> {
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("`{field}` is longer than {max} characters."),
        )),
        _ => Ok(()),
    }
}

/// Stream and snapshot URL schemes.
const MEDIA_SCHEMES: &[&str] = &["http", "https", "rtsp", "rtmp", "rtsps"];

fn url_ok(field: &str, u: &str) -> Result<(), ApiError> {
    url_in(field, u, MEDIA_SCHEMES, "an absolute http(s)/rtsp/rtmp URL")
}

/// `u` is an absolute URL of one of `schemes`, at most 2000 bytes, without NUL.
pub(crate) fn url_in(field: &str, u: &str, schemes: &[&str], what: &str) -> Result<(), ApiError> {
    let ok = u.len() <= 2000
        && !u.contains('\0')
        && url::Url::parse(u)
            .map(|p| schemes.contains(&p.scheme()))
            .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("`{field}` must be {what}."),
        ))
    }
}

/// No text field may hold a NUL character: PostgreSQL's `text` cannot store one (it would be
/// a 500 there and a silently different value elsewhere).
fn no_nul(f: &CameraFields) -> Result<(), ApiError> {
    let optional = [
        ("city", &f.city),
        ("state", &f.state),
        ("country", &f.country),
        ("source", &f.source),
        ("source_url", &f.source_url),
        ("camera_type", &f.camera_type),
        ("description", &f.description),
    ];
    let mut texts: Vec<(&str, &str)> = vec![("name", f.name.as_str())];
    texts.extend(
        optional
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
    );
    texts.extend(f.tags.iter().map(|t| ("tags", t.as_str())));
    for s in &f.streams {
        texts.push(("streams", s.format.as_str()));
        texts.push(("streams", s.url.as_str()));
    }
    if let Some(s) = &f.snapshot {
        texts.push(("snapshot", s.url.as_str()));
    }
    match texts.into_iter().find(|(_, v)| v.contains('\0')) {
        Some((field, _)) => Err(ApiError::invalid(
            field,
            format!("`{field}` must not contain NUL characters."),
        )),
        None => Ok(()),
    }
}

/// Checks every field of a camera.
pub fn validate(f: &CameraFields) -> Result<(), ApiError> {
    no_nul(f)?;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::invalid(
            "name",
            "`name` must be 1-255 characters.",
        ));
    }
    if f.streams.len() > 16 {
        return Err(ApiError::invalid("streams", "At most 16 streams."));
    }
    for s in &f.streams {
        if s.format.is_empty() || s.format.len() > 32 {
            return Err(ApiError::invalid(
                "streams",
                "A stream `format` must be 1-32 characters.",
            ));
        }
        url_ok("streams", &s.url)?;
    }
    if let Some(s) = &f.snapshot {
        url_ok("snapshot", &s.url)?;
    }
    text("city", &f.city, 100)?;
    text("state", &f.state, 100)?;
    text("country", &f.country, 100)?;
    text("source", &f.source, 100)?;
    text("description", &f.description, 2000)?;
    if let Some(u) = &f.source_url {
        if u.len() > 2000 {
            return Err(ApiError::invalid("source_url", "`source_url` is too long."));
        }
    }
    if let Some(t) = &f.camera_type {
        if t != "IP" && t != "Non_IP" {
            return Err(ApiError::invalid(
                "camera_type",
                "`camera_type` must be IP or Non_IP.",
            ));
        }
    }
    match f.lat {
        Some(v) if !(-90.0..=90.0).contains(&v) => {
            return Err(ApiError::invalid(
                "lat",
                "`lat` must be between -90 and 90.",
            ))
        }
        _ => {}
    }
    match f.lng {
        Some(v) if !(-180.0..=180.0).contains(&v) => {
            return Err(ApiError::invalid(
                "lng",
                "`lng` must be between -180 and 180.",
            ))
        }
        _ => {}
    }
    if matches!(f.framerate, Some(v) if !(0.0..=1000.0).contains(&v)) {
        return Err(ApiError::invalid(
            "framerate",
            "`framerate` must be between 0 and 1000.",
        ));
    }
    for (field, v) in [
        ("resolution_w", f.resolution_w),
        ("resolution_h", f.resolution_h),
    ] {
        if matches!(v, Some(n) if !(0..=100_000).contains(&n)) {
            return Err(ApiError::invalid(
                field,
                format!("`{field}` must be between 0 and 100000."),
            ));
        }
    }
    if f.tags.len() > 32
        || f.tags
            .iter()
            .any(|t| t.is_empty() || t.chars().count() > 50)
    {
        return Err(ApiError::invalid(
            "tags",
            "At most 32 tags of 1-50 characters.",
        ));
    }
    Ok(())
}

pub fn parse_codec(s: &str) -> Result<VideoCodec, ApiError> {
    VideoCodec::parse(s)
        .ok_or_else(|| ApiError::invalid("type", "`type` must be one of h264, h265, mjpeg."))
}

pub fn parse_status(s: &str) -> Result<CameraStatus, ApiError> {
    CameraStatus::parse(s).ok_or_else(|| {
        ApiError::invalid(
            "status",
            "`status` must be one of online, offline, unknown.",
        )
    })
}

impl CameraPatch {
    pub fn apply(self, f: &mut CameraFields) -> Result<(), ApiError> {
        if let Some(v) = self.name {
            f.name = v;
        }
        if let Some(v) = self.codec {
            f.codec = parse_codec(&v)?;
        }
        if let Some(v) = self.status {
            f.status = parse_status(&v)?;
        }
        if let Some(v) = self.streams {
            f.streams = v;
        }
        if let Some(v) = self.snapshot {
            f.snapshot = v;
        }
        if let Some(v) = self.city {
            f.city = v;
        }
        if let Some(v) = self.state {
            f.state = v;
        }
        if let Some(v) = self.country {
            f.country = v;
        }
        if let Some(v) = self.lat {
            f.lat = v;
        }
        if let Some(v) = self.lng {
            f.lng = v;
        }
        if let Some(v) = self.description {
            f.description = v;
        }
        if let Some(v) = self.tags {
            f.tags = v;
        }
        if let Some(v) = self.is_public {
            f.is_public = v;
        }
        Ok(())
    }
}

impl Core {
    pub async fn create_camera(
        &self,
        owner: UserId,
        mut f: CameraFields,
    ) -> Result<Camera, ApiError> {
        f.name = f.name.trim().to_string();
        validate(&f)?;
        let cam = self.store.create_camera(owner, &f, self.now()).await?;
        self.notify(
            &[owner],
            "camera.added",
            serde_json::json!({"camera_id": cam.id, "name": cam.fields.name}),
        )
        .await;
        Ok(cam)
    }

    pub async fn camera(&self, owner: UserId, id: CameraId) -> Result<Camera, ApiError> {
        self.store
            .camera(owner, id)
            .await?
            .ok_or(ApiError::NotFound)
    }

    pub async fn list_cameras(
        &self,
        owner: UserId,
        page: Page,
    ) -> Result<(i64, Vec<Camera>), ApiError> {
        Ok(self
            .store
            .list_cameras(owner, page.limit, page.offset, page.after)
            .await?)
    }

    /// Partial update; a camera of another owner is `NotFound`. Read-modify-write with an
    /// optimistic version check, retried on a concurrent change, so no update is lost.
    pub async fn update_camera(
        &self,
        owner: UserId,
        id: CameraId,
        patch: CameraPatch,
    ) -> Result<Camera, ApiError> {
        for _ in 0..8 {
            let mut cam = self.camera(owner, id).await?;
            patch.clone().apply(&mut cam.fields)?;
            cam.fields.name = cam.fields.name.trim().to_string();
            validate(&cam.fields)?;
            cam.updated_at = self.now();
            if self.store.update_camera(&cam).await? {
                cam.version += 1;
                return Ok(cam);
            }
        }
        Err(ApiError::Unavailable { retry_after: 1 })
    }

    /// A camera as `p` may read it: its owner, a guest it is shared with, or the paired
    /// device's own token (`NotFound` for anyone else).
    pub async fn camera_for(&self, p: &Principal, id: CameraId) -> Result<Camera, ApiError> {
        self.camera_access(p, id, CameraAction::View).await
    }

    /// A partial update by `p`: the owner or a `manage` guest (with `write`).
    pub async fn update_camera_as(
        &self,
        p: &Principal,
        id: CameraId,
        patch: CameraPatch,
    ) -> Result<Camera, ApiError> {
        let cam = self.camera_access(p, id, CameraAction::Edit).await?;
        let mut out = self.update_camera(cam.owner_id, id, patch).await?;
        out.shared = cam.shared;
        Ok(out)
    }

    /// Deletes a camera: its owner only (a guest gets `Forbidden`).
    pub async fn delete_camera_as(&self, p: &Principal, id: CameraId) -> Result<(), ApiError> {
        let cam = self.camera_access(p, id, CameraAction::Delete).await?;
        // Its guests are told too: read them before the shares go with the camera.
        let mut told: Vec<UserId> = vec![cam.owner_id];
        told.extend(
            self.store
                .shares(id)
                .await?
                .into_iter()
                .filter_map(|s| s.user_id),
        );
        self.delete_camera(cam.owner_id, id).await?;
        self.notify(
            &told,
            "camera.removed",
            serde_json::json!({"camera_id": id, "name": cam.fields.name}),
        )
        .await;
        Ok(())
    }

    /// A report from a camera (`POST /v1/cameras/{id}/heartbeat/`): its status (default
    /// online) and `last_seen_at = now`. The paired device's token for this camera may send it,
    /// and so may the owner with `write`.
    pub async fn camera_heartbeat(
        &self,
        p: &Principal,
        id: CameraId,
        status: Option<CameraStatus>,
    ) -> Result<Camera, ApiError> {
        let before = self.camera_access(p, id, CameraAction::Report).await?;
        let owner = before.owner_id;
        let status = status.unwrap_or(CameraStatus::Online);
        if !self
            .store
            .camera_heartbeat(owner, id, status, self.now())
            .await?
        {
            return Err(ApiError::NotFound);
        }
        let cam = self.camera(owner, id).await?;
        // Heartbeats are `status` events too (stored with their webhook outbox rows).
        self.heartbeat_event(&cam, before.fields.status, status)
            .await?;
        Ok(cam)
    }

    /// The owner's paired cameras: serial, last report, whether a device token is live.
    pub async fn paired_devices(&self, owner: UserId) -> Result<Vec<PairedDevice>, ApiError> {
        Ok(self.store.paired_devices(owner).await?)
    }

    /// Unpairs a camera of `owner`: its device tokens stop working at once; the camera stays.
    /// `NotFound` if it is not the owner's or has no live device token.
    pub async fn unpair_camera(&self, owner: UserId, id: CameraId) -> Result<(), ApiError> {
        if self.store.unpair_camera(owner, id, self.now()).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// Pairings the user approved that wait for their device.
    pub async fn pending_pairings(&self, user: UserId) -> Result<Vec<PendingPairing>, ApiError> {
        Ok(self.store.pending_pairings(user, self.now()).await?)
    }

    pub async fn delete_camera(&self, owner: UserId, id: CameraId) -> Result<(), ApiError> {
        if self.store.delete_camera(owner, id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_parsing() {
        assert_eq!(
            Page::parse(None, None, 100).unwrap(),
            Page {
                limit: 100,
                offset: 0,
                after: None,
            }
        );
        assert_eq!(Page::parse(Some("500"), None, 100).unwrap().limit, 100);
        assert!(Page::parse(Some("0"), None, 100).is_err());
        assert!(Page::parse(Some("abc"), None, 100).is_err());
        assert!(Page::parse(None, Some("-1"), 100).is_err());
    }

    #[test]
    fn page_links() {
        let p = Page {
            limit: 5,
            offset: 5,
            after: None,
        };
        assert_eq!(p.next(20), Some(10));
        assert_eq!(p.next(10), None);
        assert_eq!(p.previous(), Some(0));
        assert_eq!(
            Page {
                limit: 5,
                offset: 3,
                after: None,
            }
            .previous(),
            Some(0)
        );
        assert_eq!(
            Page {
                limit: 5,
                offset: 0,
                after: None,
            }
            .previous(),
            None
        );
    }
}
