//! Cameras: list, add, edit, delete the user's cameras through the same `Core` functions as
//! the API (`create_camera`, `camera`, `update_camera` with a partial patch and its optimistic
//! version check, `delete_camera`, `list_cameras` with the API's pagination). Another user's
//! camera is "not found", as on `/v1/cameras/{id}/`.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;

use camgate_core::cameras::{CameraPatch, Page};
use std::collections::HashMap;

use camgate_core::model::{Camera, CameraFields, Snapshot, Stream};
use camgate_core::store::PairedDevice;

use super::{
    confirm, done, html, ok, read_form, when, Confirm, Dash, DashError, Errs, Form, Nav,
    NoticeQuery, Res, When,
};
use crate::http::AppState;

const PAGE: i64 = 20;
/// Stream rows on the form: the camera's streams plus one empty row, up to the core's limit.
const MAX_STREAMS: usize = 16;
const FIELDS: &[&str] = &[
    "name",
    "type",
    "status",
    "streams",
    "snapshot",
    "description",
    "tags",
    "city",
    "state",
    "country",
];
const CODECS: &[&str] = &["h264", "h265", "mjpeg"];
const STATUSES: &[&str] = &["online", "offline", "unknown"];

pub struct CameraRow {
    pub id: i64,
    pub name: String,
    pub codec: &'static str,
    pub status: &'static str,
    pub streams: usize,
    pub is_public: bool,
    pub place: String,
    pub updated: When,
    /// A paired device: its serial, its last report, and whether its tokens are live.
    pub paired: Option<PairedRow>,
    /// Someone else's camera shared with the user: the owner's name and the permission.
    pub shared: Option<(String, &'static str)>,
}

pub struct PairedRow {
    pub serial: String,
    pub last_seen: Option<When>,
    pub live: bool,
}

/// An approved pairing waiting for its device to fetch its tokens.
pub struct PendingRow {
    pub client_name: String,
    pub device_name: String,
    pub approved: When,
}

#[derive(Template)]
#[template(path = "dashboard/cameras.html")]
struct CamerasPage {
    nav: Nav,
    cameras: Vec<CameraRow>,
    pending: Vec<PendingRow>,
    count: i64,
    first: i64,
    last: i64,
    previous: Option<i64>,
    next: Option<i64>,
}

fn place(f: &CameraFields) -> String {
    [&f.city, &f.state, &f.country]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn list(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let now = s.core.now();
    let page = Page {
        limit: PAGE,
        offset: q.offset(),
        after: None,
    };
    let (count, cams) = s.core.list_cameras(d.user().id, page).await?;
    let mut paired: HashMap<i64, PairedDevice> = s
        .core
        .paired_devices(d.user().id)
        .await?
        .into_iter()
        .map(|p| (p.camera_id, p))
        .collect();
    let pending = s
        .core
        .pending_pairings(d.user().id)
        .await?
        .into_iter()
        .map(|p| PendingRow {
            client_name: p.client_name,
            device_name: p.device_name,
            approved: when(now, p.decided_at),
        })
        .collect();
    let n = cams.len() as i64;
    let cameras = cams
        .into_iter()
        .map(|c| CameraRow {
            paired: paired.remove(&c.id).map(|p| PairedRow {
                serial: p.serial,
                last_seen: p.last_seen_at.map(|t| when(now, t)),
                live: p.live,
            }),
            shared: c
                .shared
                .as_ref()
                .map(|s| (s.owner_name.clone(), s.permission.as_str())),
            id: c.id,
            codec: c.fields.codec.as_str(),
            status: c.fields.status.as_str(),
            streams: c.fields.streams.len(),
            is_public: c.fields.is_public,
            place: place(&c.fields),
            updated: when(now, c.updated_at),
            name: c.fields.name,
        })
        .collect();
    Ok(ok(&CamerasPage {
        nav: d.nav("cameras", q.notice()),
        cameras,
        pending,
        count,
        first: page.offset + 1,
        last: page.offset + n,
        previous: page.previous(),
        next: page.next(count),
    }))
}

/// The camera form's values.
pub struct CameraForm {
    pub name: String,
    pub codec: String,
    pub status: String,
    pub streams: Vec<(String, String)>,
    pub snapshot: String,
    pub description: String,
    pub tags: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub is_public: bool,
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

impl CameraForm {
    pub fn codec_is(&self, c: &str) -> bool {
        self.codec == c
    }

    pub fn status_is(&self, st: &str) -> bool {
        self.status == st
    }

    fn blank() -> Self {
        Self {
            name: String::new(),
            codec: "h264".into(),
            status: "unknown".into(),
            streams: vec![(String::new(), String::new())],
            snapshot: String::new(),
            description: String::new(),
            tags: String::new(),
            city: String::new(),
            state: String::new(),
            country: String::new(),
            is_public: false,
        }
    }

    fn from_camera(c: &Camera) -> Self {
        let f = &c.fields;
        let mut streams: Vec<(String, String)> = f
            .streams
            .iter()
            .map(|s| (s.format.clone(), s.url.clone()))
            .collect();
        if streams.len() < MAX_STREAMS {
            streams.push((String::new(), String::new()));
        }
        Self {
            name: f.name.clone(),
            codec: f.codec.as_str().into(),
            status: f.status.as_str().into(),
            streams,
            snapshot: f
                .snapshot
                .as_ref()
                .map(|s| s.url.clone())
                .unwrap_or_default(),
            description: opt(&f.description),
            tags: f.tags.join(", "),
            city: opt(&f.city),
            state: opt(&f.state),
            country: opt(&f.country),
            is_public: f.is_public,
        }
    }

    fn from_form(f: &Form) -> Self {
        let mut streams: Vec<(String, String)> = (0..MAX_STREAMS)
            .map(|i| {
                (
                    f.get(&format!("stream_format_{i}")).trim().to_string(),
                    f.get(&format!("stream_url_{i}")).trim().to_string(),
                )
            })
            .filter(|(a, b)| !a.is_empty() || !b.is_empty())
            .collect();
        if streams.len() < MAX_STREAMS {
            streams.push((String::new(), String::new()));
        }
        Self {
            name: f.get("name").to_string(),
            codec: f.get("type").to_string(),
            status: f.get("status").to_string(),
            streams,
            snapshot: f.get("snapshot").trim().to_string(),
            description: f.get("description").to_string(),
            tags: f.get("tags").to_string(),
            city: f.get("city").to_string(),
            state: f.get("state").to_string(),
            country: f.get("country").to_string(),
            is_public: f.checked("is_public"),
        }
    }

    /// The form as a patch for the core (every field the form shows). `existing` keeps the
    /// snapshot's time when its URL did not change.
    fn patch(&self, now: i64, existing: Option<&Camera>) -> Result<CameraPatch, Errs> {
        let mut streams = Vec::new();
        for (format, url) in &self.streams {
            match (format.is_empty(), url.is_empty()) {
                (true, true) => {}
                (false, false) => streams.push(Stream {
                    format: format.clone(),
                    url: url.clone(),
                }),
                _ => {
                    return Err(Errs::field(
                        "streams",
                        "Each stream needs both a format and a URL.",
                    ))
                }
            }
        }
        let text = |v: &str| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_string())
        };
        let old_snapshot = existing.and_then(|c| c.fields.snapshot.as_ref());
        let snapshot = match (text(&self.snapshot), old_snapshot) {
            (Some(u), Some(old)) if old.url == u => None,
            (Some(u), _) => Some(Some(Snapshot {
                url: u,
                created_at: now,
            })),
            (None, _) => Some(None),
        };
        Ok(CameraPatch {
            name: Some(self.name.clone()),
            codec: Some(self.codec.clone()),
            status: Some(self.status.clone()),
            streams: Some(streams),
            snapshot,
            city: Some(text(&self.city)),
            state: Some(text(&self.state)),
            country: Some(text(&self.country)),
            description: Some(text(&self.description)),
            tags: Some(
                self.tags
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
            ),
            is_public: Some(self.is_public),
            ..Default::default()
        })
    }
}

#[derive(Template)]
#[template(path = "dashboard/camera_form.html")]
struct CameraFormPage {
    nav: Nav,
    /// None: a new camera; Some: the id being edited.
    editing: Option<i64>,
    form: CameraForm,
    codecs: &'static [&'static str],
    statuses: &'static [&'static str],
    errors: Errs,
}

fn form_page(d: &Dash, editing: Option<i64>, form: CameraForm, errors: Errs) -> CameraFormPage {
    CameraFormPage {
        nav: d.nav("cameras", None),
        editing,
        form,
        codecs: CODECS,
        statuses: STATUSES,
        errors,
    }
}

pub async fn new_form(d: Dash) -> Res {
    Ok(ok(&form_page(&d, None, CameraForm::blank(), Errs::none())))
}

pub async fn create(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    let form = CameraForm::from_form(&f);
    let patch = match form.patch(s.core.now(), None) {
        Ok(p) => p,
        Err(errs) => {
            return Ok(html(
                StatusCode::BAD_REQUEST,
                &form_page(&d, None, form, errs),
            ))
        }
    };
    let mut fields = CameraFields::named("");
    let result = match patch.apply(&mut fields) {
        Ok(()) => s.core.create_camera(d.user().id, fields).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(done("/dashboard/cameras/", "camera-added")),
        Err(e) => {
            let errs = Errs::from_api(e, FIELDS)?;
            Ok(html(
                StatusCode::BAD_REQUEST,
                &form_page(&d, None, form, errs),
            ))
        }
    }
}

fn parse_id(id: &str) -> Result<i64, DashError> {
    id.parse::<i64>().map_err(|_| DashError::not_found())
}

pub async fn edit_form(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    let cam = s.core.camera(d.user().id, parse_id(&id)?).await?;
    Ok(ok(&form_page(
        &d,
        Some(cam.id),
        CameraForm::from_camera(&cam),
        Errs::none(),
    )))
}

pub async fn update(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    let id = parse_id(&id)?;
    let cam = s.core.camera(d.user().id, id).await?;
    let form = CameraForm::from_form(&f);
    let patch = match form.patch(s.core.now(), Some(&cam)) {
        Ok(p) => p,
        Err(errs) => {
            return Ok(html(
                StatusCode::BAD_REQUEST,
                &form_page(&d, Some(id), form, errs),
            ))
        }
    };
    match s.core.update_camera(d.user().id, id, patch).await {
        Ok(_) => Ok(done("/dashboard/cameras/", "camera-saved")),
        Err(e) => {
            let errs = Errs::from_api(e, FIELDS)?;
            Ok(html(
                StatusCode::BAD_REQUEST,
                &form_page(&d, Some(id), form, errs),
            ))
        }
    }
}

pub async fn delete_confirm(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    let cam = s.core.camera(d.user().id, parse_id(&id)?).await?;
    Ok(confirm(
        &d,
        "cameras",
        Confirm {
            title: format!("Delete the camera “{}”?", cam.fields.name),
            message: "The camera and its settings will be deleted. This cannot be undone.".into(),
            consequences: vec!["Applications will no longer see it in your camera list.".into()],
            action: format!("/dashboard/cameras/{}/delete", cam.id),
            button: "Delete camera",
            cancel: format!("/dashboard/cameras/{}/edit", cam.id),
            danger: true,
        },
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    let me = camgate_core::principal::Principal::session(d.user().clone());
    s.core.delete_camera_as(&me, parse_id(&id)?).await?;
    Ok(done("/dashboard/cameras/", "camera-deleted"))
}

pub async fn unpair_confirm(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    let cam = s.core.camera(d.user().id, parse_id(&id)?).await?;
    Ok(confirm(
        &d,
        "cameras",
        Confirm {
            title: format!("Unpair the device of “{}”?", cam.fields.name),
            message: "The paired device's tokens stop working at once. The camera stays; \
                      pairing the device again re-binds it."
                .into(),
            consequences: vec!["The device can no longer report as this camera.".into()],
            action: format!("/dashboard/cameras/{}/unpair", cam.id),
            button: "Unpair device",
            cancel: "/dashboard/cameras/".into(),
            danger: true,
        },
    ))
}

pub async fn unpair(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core.unpair_camera(d.user().id, parse_id(&id)?).await?;
    Ok(done("/dashboard/cameras/", "camera-unpaired"))
}
