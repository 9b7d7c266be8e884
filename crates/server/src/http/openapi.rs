//! The OpenAPI 3.1 description of every API route, served at `GET /openapi.json`.
//!
//! The operations come from `#[utoipa::path]` annotations on the handlers themselves; this
//! module holds the schema types of bodies the handlers build with `json!` (they are
//! documentation only: nothing deserializes into them), the security schemes, and the
//! aliases the router mounts one handler under (`/oauth/token` and `/oauth/token/`, CAM2's
//! `.json` suffix), which are copied from the annotated path with their own operation ids.
//!
//! `crates/server/tests/api/openapi.rs` checks that every route the router serves is here and that
//! real answers validate against these schemas; `scripts/schemathesis` fuzzes a live server
//! against the document.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

// ---------------------------------------------------------------------------------------------
// Shared

/// A video stream of a camera.
#[derive(ToSchema)]
pub struct StreamDoc {
    /// Stream format, e.g. `hls`, `rtsp`, `mjpeg`.
    pub format: String,
    pub url: String,
}

/// Video codec.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Codec {
    H264,
    H265,
    Mjpeg,
}

/// Camera status.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Status {
    Online,
    Offline,
    Unknown,
}

/// `GET /health/alive` and `GET /health/ready`.
#[derive(ToSchema)]
pub struct HealthStatus {
    /// `ok`, or `unavailable` (readiness, with 503) when the database does not answer.
    #[schema(example = "ok")]
    pub status: String,
}

// ---------------------------------------------------------------------------------------------
// Angelcam (specs 000 and 001)

/// Angelcam error: `{status, title, detail}`.
#[derive(ToSchema)]
#[schema(example = json!({"status": 401, "title": "not_authenticated", "detail": "Authentication credentials were not provided."}))]
pub struct AngelErrorBody {
    /// The HTTP status code again.
    pub status: u16,
    /// A short machine-readable title: `not_authenticated`, `permission_denied`, `not_found`,
    /// `invalid`, `conflict`, `unsupported_media_type`, `method_not_allowed`,
    /// `request_too_large`, `service_unavailable`.
    pub title: String,
    pub detail: String,
}

/// `GET /v1/me/`.
#[derive(ToSchema)]
#[schema(example = json!({"id": 1, "email": "user@example.com", "first_name": "Demo", "last_name": "User", "phone": ""}))]
pub struct AngelUser {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
}

/// A camera snapshot.
#[derive(ToSchema)]
pub struct AngelSnapshot {
    pub url: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A camera in Angelcam field names.
#[derive(ToSchema)]
pub struct AngelCamera {
    pub id: i64,
    pub name: String,
    #[schema(rename = "type", inline)]
    pub codec: Codec,
    #[schema(inline)]
    pub status: Status,
    #[schema(required = true)]
    pub snapshot: Option<AngelSnapshot>,
    pub streams: Vec<StreamDoc>,
    #[schema(required = true)]
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub is_public: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// Present (true) only when the camera is someone else's, shared with the caller.
    pub shared: Option<bool>,
    /// A shared camera: what the caller may do (`view`, `playback`, `manage`).
    pub permission: Option<SharePermissionDoc>,
    /// A shared camera: its owner's display name.
    pub owner_name: Option<String>,
}

/// What a guest may do with a shared camera; each includes the ones before it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SharePermissionDoc {
    /// Metadata, snapshot and live stream URLs.
    View,
    /// And recordings.
    Playback,
    /// And editing the camera (not deleting or sharing it).
    Manage,
}

/// `POST /v1/cameras/{id}/events/`.
#[derive(ToSchema)]
#[schema(example = json!({"type": "motion", "at": "2026-12-05T10:00:00Z", "data": {"zone": "door"}}))]
pub struct EventIn {
    /// `motion`, `status`, `tamper` or `custom`.
    #[schema(rename = "type")]
    pub kind: String,
    /// RFC 3339 or Unix seconds; default: now.
    pub at: Option<String>,
    /// A JSON object, at most 4096 bytes.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// An event.
#[derive(ToSchema)]
pub struct EventOut {
    /// The position in the event stream (`Last-Event-ID`, `before`).
    pub id: i64,
    /// The idempotency id webhook deliveries of this event carry.
    pub event_id: String,
    pub camera_id: Option<i64>,
    #[schema(rename = "type")]
    pub kind: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: String,
}

/// `GET /v1/events/`.
#[derive(ToSchema)]
pub struct EventPage {
    /// The next (older) page, `null` on the last.
    pub next: Option<String>,
    pub results: Vec<EventOut>,
}

/// Filters of `GET /v1/events/`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQueryDoc {
    /// One camera's events.
    pub camera: Option<i64>,
    /// `motion`, `status`, `tamper` or `custom`.
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// `at` at or after this time (RFC 3339 or Unix seconds).
    pub since: Option<String>,
    /// `at` before this time.
    pub until: Option<String>,
    /// Events older than this id (keyset; from `next`).
    pub before: Option<i64>,
    /// 1-100 (default 100).
    pub limit: Option<i64>,
}

/// `POST /v1/cameras/{id}/recordings/`.
#[derive(ToSchema)]
#[schema(example = json!({"start": "2026-12-05T10:00:00Z", "end": "2026-12-05T10:05:00Z", "url": "https://media.example.com/rec/1.mp4", "format": "mp4", "size_bytes": 1048576}))]
pub struct RecordingIn {
    pub start: String,
    /// After `start`, at most 24 h later.
    pub end: String,
    pub url: String,
    pub format: String,
    pub size_bytes: Option<i64>,
}

/// A recorded segment; `url` is signed for the caller.
#[derive(ToSchema)]
pub struct RecordingOut {
    pub id: i64,
    pub camera_id: i64,
    pub start: String,
    pub end: String,
    pub url: String,
    pub format: String,
    pub size_bytes: i64,
}

/// `GET /v1/cameras/{id}/recordings/`.
#[derive(ToSchema)]
pub struct RecordingPage {
    pub next: Option<String>,
    pub results: Vec<RecordingOut>,
}

/// The timeline window.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordingQueryDoc {
    /// RFC 3339 or Unix seconds (required).
    pub start: String,
    /// After `start`, at most 24 h later (required).
    pub end: String,
    /// 1-100 (default 100).
    pub limit: Option<i64>,
    /// Keyset position from `next`.
    pub after: Option<String>,
}

/// `POST /v1/cameras/{id}/snapshot/`.
#[derive(ToSchema)]
#[schema(example = json!({"url": "https://media.example.com/snap/1.jpg"}))]
pub struct SnapshotUpdateIn {
    pub url: String,
    /// When it was taken (RFC 3339 or Unix seconds); default: now.
    pub taken_at: Option<String>,
}

/// A camera shared with an e-mail address.
#[derive(ToSchema)]
#[schema(example = json!({"id": 1, "camera_id": 7, "email": "guest@example.com", "permission": "view", "pending": false, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}))]
pub struct AngelShare {
    pub id: i64,
    pub camera_id: i64,
    /// The address, normalised (lower case).
    pub email: String,
    #[schema(inline)]
    pub permission: SharePermissionDoc,
    /// No account has this address yet; the share applies when one is created.
    pub pending: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /v1/cameras/{id}/shares/`.
#[derive(ToSchema)]
#[schema(example = json!({"email": "guest@example.com", "permission": "view"}))]
pub struct AngelShareIn {
    pub email: String,
    #[schema(inline)]
    pub permission: SharePermissionDoc,
}

/// `PUT /v1/cameras/{id}/shares/{share_id}/`.
#[derive(ToSchema)]
#[schema(example = json!({"permission": "playback"}))]
pub struct AngelSharePermissionIn {
    #[schema(inline)]
    pub permission: SharePermissionDoc,
}

/// Event types a webhook may subscribe to.
#[derive(ToSchema)]
pub enum WebhookEventDoc {
    /// An event a camera or its owner posted (`POST /v1/cameras/{id}/events/`).
    #[schema(rename = "camera.event")]
    CameraEvent,
    #[schema(rename = "camera.added")]
    CameraAdded,
    #[schema(rename = "camera.removed")]
    CameraRemoved,
    #[schema(rename = "camera.shared")]
    CameraShared,
    /// The user approved an application on the consent page.
    #[schema(rename = "app.authorized")]
    AppAuthorized,
    /// The user revoked an application's access.
    #[schema(rename = "app.revoked")]
    AppRevoked,
}

/// `POST /v1/webhooks/`.
#[derive(ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/camgate", "events": ["camera.event", "camera.added"]}))]
pub struct AngelWebhookIn {
    /// An absolute https URL, at most 2000 characters, whose host is not (and does not resolve
    /// to) a loopback, private, link-local or other special-purpose address.
    pub url: String,
    /// The event types to deliver (at least one).
    #[schema(inline)]
    pub events: Vec<WebhookEventDoc>,
}

/// A webhook subscription. Deliveries are `POST`s of `{id, type, created_at, data}` (`id`: the
/// idempotency key, the same on every retry) signed with `Camgate-Signature: t=<unix>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<body>")>`, with `Camgate-Delivery` and `Camgate-Event` headers;
/// retried with exponential backoff for 24 h; the webhook is disabled after a day of failures.
#[derive(ToSchema)]
#[schema(example = json!({"id": 1, "url": "https://hooks.example.com/camgate", "events": ["camera.event"], "created_at": "2026-01-01T00:00:00Z", "disabled": false, "disabled_at": null, "failing_since": null}))]
pub struct AngelWebhook {
    pub id: i64,
    pub url: String,
    #[schema(inline)]
    pub events: Vec<WebhookEventDoc>,
    pub created_at: String,
    /// Disabled after a day of failed deliveries (replaying a delivery enables it again).
    pub disabled: bool,
    #[schema(required = true)]
    pub disabled_at: Option<String>,
    /// Since when every attempt has failed.
    #[schema(required = true)]
    pub failing_since: Option<String>,
}

/// `POST /v1/webhooks/` → 201: the webhook and its signing secret, shown this once.
#[derive(ToSchema)]
#[schema(example = json!({"id": 1, "url": "https://hooks.example.com/camgate", "events": ["camera.event"], "created_at": "2026-01-01T00:00:00Z", "disabled": false, "disabled_at": null, "failing_since": null, "secret": "whsec_0123456789abcdefghijABCDEFGHIJ01"}))]
pub struct AngelWebhookCreated {
    pub id: i64,
    pub url: String,
    #[schema(inline)]
    pub events: Vec<WebhookEventDoc>,
    pub created_at: String,
    pub disabled: bool,
    #[schema(required = true)]
    pub disabled_at: Option<String>,
    #[schema(required = true)]
    pub failing_since: Option<String>,
    /// `whsec_` + 32 characters: the HMAC key of `Camgate-Signature`. Not shown again.
    pub secret: String,
}

/// State of a delivery.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryStateDoc {
    /// Due at `next_attempt_at`.
    Pending,
    /// A 2xx answer came back.
    Delivered,
    /// Given up: a day of failures, or the webhook was disabled.
    Failed,
}

/// One attempt of a delivery.
#[derive(ToSchema)]
pub struct AngelDeliveryAttempt {
    pub at: String,
    /// The status answered, if an answer came.
    #[schema(required = true)]
    pub status: Option<i64>,
    #[schema(required = true)]
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery of a notice to a webhook.
#[derive(ToSchema)]
pub struct AngelDelivery {
    pub id: i64,
    /// The payload's `id` (idempotency key).
    pub event_id: String,
    #[schema(rename = "type", inline)]
    pub kind: WebhookEventDoc,
    #[schema(inline)]
    pub state: DeliveryStateDoc,
    /// Attempts so far.
    pub attempts: i64,
    #[schema(required = true)]
    pub last_status: Option<i64>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the next try is due (pending deliveries only).
    #[schema(required = true)]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    #[schema(required = true)]
    pub delivered_at: Option<String>,
    /// The body sent: `{id, type, created_at, data}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Its attempts, oldest first.
    pub attempt_log: Vec<AngelDeliveryAttempt>,
}

/// `GET /v1/webhooks/{id}/deliveries/`.
#[derive(ToSchema)]
pub struct AngelDeliveryPage {
    /// The next (older) page, `null` on the last.
    pub next: Option<String>,
    pub results: Vec<AngelDelivery>,
}

/// Paging of the delivery log.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQueryDoc {
    /// Deliveries older than this id (keyset; from `next`).
    pub before: Option<i64>,
    /// 1-100 (default 50).
    pub limit: Option<i64>,
}

/// A dealer's customer account and its link.
#[derive(ToSchema)]
pub struct AngelCustomer {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `full` or `limited` (read-only cameras, no account changes).
    pub level: String,
    /// `full`, `limited`, or `revoked` (the customer ended the dealer's access).
    pub status: String,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /v1/dealer/customers/`.
#[derive(ToSchema)]
#[schema(example = json!({"email": "customer@example.com", "password": "a long passphrase", "first_name": "Cus", "last_name": "Tomer", "level": "full"}))]
pub struct AngelCustomerIn {
    pub email: String,
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    /// `full` (default) or `limited`.
    pub level: Option<String>,
}

/// `GET /v1/cameras/`: a limit/offset page (django-rest-framework).
#[derive(ToSchema)]
pub struct AngelCameraPage {
    pub count: i64,
    /// Absolute URL of the next page, `null` on the last.
    #[schema(required = true)]
    pub next: Option<String>,
    /// Absolute URL of the previous page, `null` on the first.
    #[schema(required = true)]
    pub previous: Option<String>,
    pub results: Vec<AngelCamera>,
}

/// A snapshot given with a camera.
#[derive(ToSchema)]
pub struct AngelSnapshotIn {
    /// Absolute http(s), rtsp or rtmp URL, at most 2000 bytes.
    #[schema(max_length = 2000, format = "uri")]
    pub url: String,
}

/// A stream given with a camera.
#[derive(ToSchema)]
pub struct AngelStreamIn {
    /// 1-32 bytes, e.g. `hls`.
    #[schema(min_length = 1, max_length = 32)]
    pub format: String,
    /// Absolute http(s), rtsp or rtmp URL, at most 2000 bytes.
    #[schema(max_length = 2000, format = "uri")]
    pub url: String,
}

/// `POST /v1/cameras/` and `PUT /v1/cameras/{id}/` (a partial update: only the fields given
/// change; `null` clears `snapshot` and `description`). POST requires `name`.
#[derive(ToSchema)]
#[schema(example = json!({
    "name": "Front door", "type": "h264", "status": "online", "is_public": false,
    "streams": [{"format": "hls", "url": "https://streams.example.com/front/index.m3u8"}],
    "snapshot": {"url": "https://snapshots.example.com/front.jpg"},
    "description": "Porch", "tags": ["home"]
}))]
pub struct AngelCameraIn {
    /// 1-255 characters, not all blank.
    #[schema(min_length = 1, max_length = 255)]
    pub name: Option<String>,
    #[schema(rename = "type", inline)]
    pub codec: Option<Codec>,
    #[schema(inline)]
    pub status: Option<Status>,
    #[schema(max_items = 16)]
    pub streams: Option<Vec<AngelStreamIn>>,
    pub snapshot: Option<AngelSnapshotIn>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// At most 32 tags of 1-50 characters.
    #[schema(max_items = 32)]
    pub tags: Option<Vec<String>>,
    pub is_public: Option<bool>,
}

/// Query of `GET /v1/cameras/`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AngelPageQuery {
    /// Page size (default and maximum 100; a larger one is clamped).
    #[param(minimum = 1, example = 5)]
    pub limit: Option<i64>,
    /// Offset of the first camera.
    #[param(minimum = 0, example = 0)]
    pub offset: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// CameraManager (specs 003 and 004)

/// CameraManager error: `{code, title, detail}` (RFC 7807 style).
#[derive(ToSchema)]
#[schema(example = json!({"code": 401, "title": "not_authenticated", "detail": "Authentication credentials were not provided."}))]
pub struct CmErrorBody {
    /// The HTTP status code again.
    pub code: u16,
    pub title: String,
    pub detail: String,
}

/// `GET /rest/v2.0/users/self`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct CmUser {
    pub userId: i64,
    pub email: String,
    pub firstName: String,
    pub lastName: String,
    pub phone: String,
}

/// A camera in CameraManager field names.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct CmCamera {
    pub cameraId: i64,
    pub name: String,
    #[schema(inline)]
    pub status: Status,
    #[schema(inline)]
    pub codec: Codec,
    pub streams: Vec<StreamDoc>,
    #[schema(required = true)]
    pub snapshotUrl: Option<String>,
    /// RFC 3339, UTC.
    pub createdAt: String,
}

/// The empty object `DELETE /rest/v2.0/users/self/tokens/current` answers.
#[derive(ToSchema)]
pub struct Empty {}

/// Query of `GET /rest/v2.0/cameras`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CmPageQuery {
    /// Page size (default and maximum 1000; a larger one is clamped).
    #[param(minimum = 1, example = 5)]
    pub limit: Option<i64>,
    #[param(minimum = 0, example = 0)]
    pub offset: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// CAM2API (spec 002)

/// CAM2 resource error: `{detail}`.
#[derive(ToSchema)]
#[schema(example = json!({"detail": "Authentication credentials were not provided."}))]
pub struct Cam2ErrorBody {
    pub detail: String,
}

/// CAM2 token-route error: CAM2's `detail` plus the RFC 6749 §5.2 members.
#[derive(ToSchema)]
pub struct Cam2TokenErrorBody {
    pub detail: String,
    #[schema(inline)]
    pub error: OAuthErrorCodeDoc,
    pub error_description: String,
}

/// `POST /token/` parameters (a form or a JSON object; HTTP Basic works too). The example is
/// the `serve --demo` CAM2 client.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "cam2.demo", "client_secret": "cam2-demo-secret-0123456789"}))]
pub struct Cam2TokenRequest {
    /// Only `client_credentials` (may be omitted).
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes; default the client's.
    pub scope: Option<String>,
}

/// `POST /refresh_token/` parameters.
#[derive(ToSchema)]
pub struct Cam2RefreshRequest {
    /// A JWT this server issued (it may have expired, within the refresh window).
    pub token: String,
}

/// CAM2 token answer: spec 002's names (`token`, `expires in`) and RFC 6749 §5.1's.
#[derive(ToSchema)]
pub struct Cam2TokenResponse {
    pub token: String,
    #[schema(rename = "expires in")]
    pub expires_in_spaced: i64,
    /// `JWT`.
    pub token_type: String,
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// A camera in CAM2 field names.
#[derive(ToSchema)]
pub struct Cam2Camera {
    pub camera_id: i64,
    #[schema(required = true)]
    pub city: Option<String>,
    #[schema(required = true)]
    pub state: Option<String>,
    #[schema(required = true)]
    pub country: Option<String>,
    #[schema(required = true)]
    pub lat: Option<f64>,
    #[schema(required = true)]
    pub lng: Option<f64>,
    #[schema(required = true)]
    pub source: Option<String>,
    #[schema(required = true)]
    pub source_url: Option<String>,
    /// `IP` or `Non_IP`.
    #[schema(required = true)]
    pub camera_type: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub is_video: Option<bool>,
    #[schema(required = true)]
    pub framerate: Option<f64>,
    #[schema(required = true)]
    pub outdoors: Option<bool>,
    #[schema(required = true)]
    pub traffic: Option<bool>,
    #[schema(required = true)]
    pub inactive: Option<bool>,
    #[schema(required = true)]
    pub resolution_w: Option<i64>,
    #[schema(required = true)]
    pub resolution_h: Option<i64>,
    /// RFC 3339, UTC.
    pub date_added: String,
    /// RFC 3339, UTC.
    pub last_updated: String,
}

/// Filters of `GET /cameras/` (django-filter style; unknown parameters are ignored).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Cam2Query {
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    /// `IP` or `Non_IP`.
    pub camera_type: Option<String>,
    pub source: Option<String>,
    pub lat_min: Option<String>,
    pub lat_max: Option<String>,
    pub lng_min: Option<String>,
    pub lng_max: Option<String>,
    pub resolution_w_min: Option<String>,
    pub resolution_w_max: Option<String>,
    pub resolution_h_min: Option<String>,
    pub resolution_h_max: Option<String>,
    pub framerate_min: Option<String>,
    pub framerate_max: Option<String>,
    /// Date (`YYYY-MM-DD`) or RFC 3339 time.
    pub added_before: Option<String>,
    pub added_after: Option<String>,
    pub updated_before: Option<String>,
    pub updated_after: Option<String>,
    /// `true` or `false`.
    pub video: Option<String>,
    pub outdoors: Option<String>,
    pub traffic: Option<String>,
    pub inactive: Option<String>,
    /// `lat,lng` in degrees; needs `radius_km`.
    pub near: Option<String>,
    pub radius_km: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

/// One public key (RFC 7517 §4; RFC 8037 for `OKP`, RFC 7518 §6.3.1 for `RSA`).
#[derive(ToSchema)]
pub struct Jwk {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA` (id_tokens only).
    pub kty: String,
    /// OKP and EC keys.
    pub crv: Option<String>,
    /// OKP and EC keys.
    pub x: Option<String>,
    /// EC keys only.
    pub y: Option<String>,
    /// RSA keys: modulus and exponent, base64url big-endian.
    pub n: Option<String>,
    pub e: Option<String>,
    pub kid: String,
    /// `EdDSA` or `ES256` (access tokens and id_tokens), `RS256` (id_tokens).
    pub alg: String,
    #[schema(rename = "use")]
    pub use_: String,
}

/// `GET /.well-known/jwks.json` (RFC 7517 §5).
#[derive(ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0

/// RFC 6749 §5.2 error codes (plus `slow_down`, answered 429 when throttled).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OAuthErrorCodeDoc {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    UnsupportedTokenType,
    ServerError,
    TemporarilyUnavailable,
    SlowDown,
}

/// OAuth error (RFC 6749 §5.2): `{error, error_description}`.
#[derive(ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "The username or password is wrong."}))]
pub struct OAuthErrorBody {
    #[schema(inline)]
    pub error: OAuthErrorCodeDoc,
    pub error_description: String,
}

/// RFC 6750 §3.1 error codes of a protected resource (UserInfo).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BearerErrorCodeDoc {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    ServerError,
    TemporarilyUnavailable,
}

/// A bearer-token error (RFC 6750 §3): `{error, error_description}`, with `WWW-Authenticate`.
#[derive(ToSchema)]
#[schema(example = json!({"error": "invalid_token", "error_description": "Authentication credentials were not provided."}))]
pub struct BearerErrorBody {
    #[schema(inline)]
    pub error: BearerErrorCodeDoc,
    pub error_description: String,
}

/// Token endpoint parameters (RFC 6749 §4.1.3, §4.3.2, §4.4.2, §6). They may also come in the
/// query string (specs 003/004). Client credentials come here or in HTTP Basic (§2.3.1). The
/// example is spec 001's password grant, which works against `serve --demo`.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "DBaJcGbAT2Tbvbrz0fLh1uRmYURprJAQPxwFsgoo", "grant_type": "password", "username": "user@example.com", "password": "secret"}))]
pub struct TokenRequest {
    /// `authorization_code`, `password`, `refresh_token`, `client_credentials` or
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    pub grant_type: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Password grant.
    pub username: Option<String>,
    /// Password grant.
    pub password: Option<String>,
    /// Refresh grant.
    pub refresh_token: Option<String>,
    /// Authorization-code grant.
    pub code: Option<String>,
    /// Authorization-code grant.
    pub redirect_uri: Option<String>,
    /// Authorization-code grant with PKCE (RFC 7636 §4.5).
    pub code_verifier: Option<String>,
    /// Device grant (RFC 8628 §3.4): the `device_code` of `/oauth/device_authorization`.
    pub device_code: Option<String>,
    /// Space-separated scopes (`read`, `write`, `user_access`, `camera_access`, …).
    pub scope: Option<String>,
}

/// A camera's report (all optional).
#[derive(ToSchema)]
#[schema(example = json!({"status": "online"}))]
pub struct HeartbeatIn {
    /// `online` (default), `offline` or `unknown`.
    pub status: Option<String>,
}

/// Device authorization request (RFC 8628 §3.1); client authentication as at the token
/// endpoint. The example is the `serve --demo` device client.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "camgate.device.demo", "scope": "read"}))]
pub struct DeviceAuthorizationRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes; the client's default when absent. `camera_pair` alone pairs the
    /// device as a camera of the approving user: its tokens are bound to that camera.
    pub scope: Option<String>,
    /// Pairing: the camera's name (required with `camera_pair`).
    pub device_name: Option<String>,
    /// Pairing: the device's serial (required with `camera_pair`; the same serial paired
    /// again by the same user is the same camera).
    pub device_serial: Option<String>,
    /// Pairing: the device's model.
    pub device_model: Option<String>,
    /// Pairing: its codec, `h264`, `h265` or `mjpeg`.
    pub device_type: Option<String>,
}

/// Device authorization answer (RFC 8628 §3.2).
#[derive(ToSchema)]
#[schema(example = json!({"device_code": "cgd_…", "user_code": "BCDF-GHJK", "verification_uri": "https://camgate.example/device", "verification_uri_complete": "https://camgate.example/device?user_code=BCDF-GHJK", "expires_in": 600, "interval": 5}))]
pub struct DeviceAuthorizationResponse {
    /// The device's secret for polling the token endpoint.
    pub device_code: String,
    /// What the user enters on `verification_uri`: 8 letters shown `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// RFC 6749 §5.1 token answer.
#[derive(ToSchema)]
#[schema(example = json!({"access_token": "Ab3…", "token_type": "Bearer", "expires_in": 3600, "scope": "read write", "refresh_token": "Zx9…"}))]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer` (`bearer` on the CameraManager profile), for JWT access tokens too (RFC 9068 §2).
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    /// Absent for client credentials.
    pub refresh_token: Option<String>,
    /// OpenID Connect (Core §3.1.3.3): with the `openid` scope, at the code exchange and at
    /// every refresh of such a grant.
    pub id_token: Option<String>,
}

/// Revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.1) parameters; client
/// authentication as at the token endpoint. The example uses the `serve --demo` CameraManager
/// client (spec 003).
#[derive(ToSchema)]
#[schema(example = json!({"token": "an-unknown-token", "token_type_hint": "access_token", "client_id": "cameramanager.test", "client_secret": "qwertyuiopasdfghjklzxcvbnm12345"}))]
pub struct TokenHintRequest {
    pub token: String,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 7662 §2.2 introspection answer; an unknown, expired or revoked token is `{"active": false}`.
#[derive(ToSchema)]
pub struct IntrospectResponse {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub token_type: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub sub: Option<String>,
    pub aud: Option<String>,
    pub iss: Option<String>,
}

/// RFC 8414 §2 authorization server metadata.
#[derive(ToSchema)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub authorization_response_iss_parameter_supported: bool,
    /// OpenID Connect (Discovery 1.0 §3); the RFC 8414 document carries them too.
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub device_authorization_endpoint: String,
    /// `public`, `pairwise`.
    pub subject_types_supported: Vec<String>,
    /// `RS256`, `ES256`, `EdDSA`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub prompt_values_supported: Vec<String>,
    /// `false`: `request_uri` is not supported (the default would be `true`).
    pub request_uri_parameter_supported: bool,
}

/// Authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), in the query string of a GET or
/// the form body of a POST.
#[derive(ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeRequest {
    /// `code`.
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    /// Must equal a registered redirect URI exactly.
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    /// PKCE challenge (S256).
    pub code_challenge: Option<String>,
    /// `S256`.
    pub code_challenge_method: Option<String>,
    /// `consent` to ask again, `login` to sign in again, `none` to fail rather than show a page.
    pub prompt: Option<String>,
    /// OpenID Connect: echoed in the id_token (at most 512 characters).
    pub nonce: Option<String>,
    /// OpenID Connect: seconds since sign-in beyond which the user signs in again.
    pub max_age: Option<i64>,
    /// OpenID Connect: pre-fills the sign-in form's email field.
    pub login_hint: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The document

/// Security schemes (RFC 6750 §2.1 Bearer; the `PersonalAccessToken` and `JWT` schemes of the
/// Authorization header; HTTP Basic client authentication, RFC 6749 §2.3.1).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "Bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from the token endpoint: `Authorization: Bearer TOKEN`.",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "PersonalAccessToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "A personal access token from the dashboard or `camgate pat add`: \
                 `Authorization: PersonalAccessToken TOKEN`.",
            ))),
        );
        c.add_security_scheme(
            "JWT",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "A JWT access token (RFC 9068) from `POST /token/` or a JWT profile: \
                 `Authorization: JWT TOKEN` (`Bearer` works too).",
            ))),
        );
        c.add_security_scheme(
            "ClientBasic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Client authentication (RFC 6749 §2.3.1): client_id and client_secret, \
                         each form-urlencoded. The same may be sent as body parameters.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "camgate",
        description = "Self-hosted camera-cloud API: an OAuth 2.0 authorization server and the \
camera REST API it protects, in three dialects (Angelcam `/v1/…`, CAM2API `/token/`, \
`/cameras/` with optional `.json` suffix, Eagle Eye CameraManager `/rest/v2.0/…`).\n\n\
Each surface has its own error shape: Angelcam `{status, title, detail}`, CAM2 `{detail}` \
(token routes add `error`, `error_description`), CameraManager `{code, title, detail}`, OAuth \
`{error, error_description}` (RFC 6749 §5.2).\n\n\
Left out: the browser-only pages (`/login`, `/logout`, `/consent`, `/static/…` and the developer \
dashboard under `/dashboard/`), which answer HTML forms with CSRF tokens and cookies, not an API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::angelcam::me,
        super::angelcam::delete_me,
        super::angelcam::list_cameras,
        super::angelcam::create_camera,
        super::angelcam::get_camera,
        super::angelcam::camera_heartbeat,
        super::angelcam::update_camera,
        super::angelcam::delete_camera,
        super::sharing::list_shares,
        super::sharing::create_share,
        super::sharing::get_share,
        super::sharing::update_share,
        super::sharing::delete_share,
        super::events::post_event,
        super::events::list_events,
        super::events::event_stream,
        super::events::add_recording,
        super::events::list_recordings,
        super::events::update_snapshot,
        super::sharing::list_customers,
        super::sharing::create_customer,
        super::webhooks::create_webhook,
        super::webhooks::list_webhooks,
        super::webhooks::get_webhook,
        super::webhooks::delete_webhook,
        super::webhooks::list_deliveries,
        super::webhooks::replay_delivery,
        super::cameramanager::user_self,
        super::cameramanager::logout,
        super::cameramanager::cameras,
        super::cam2::token,
        super::cam2::refresh,
        super::cam2::cameras,
        super::cam2::jwks,
        super::oauth::token,
        super::device::device_authorization,
        super::authorize::authorize,
        super::lifecycle::revoke,
        super::lifecycle::introspect,
        super::lifecycle::metadata,
        super::oidc::openid_configuration,
        super::oidc::userinfo,
        super::oidc::end_session,
        super::alive,
        super::ready,
        super::ops::metrics_endpoint,
        openapi_json,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Angelcam", description = "Angelcam dialect (specs 000, 001); trailing slash required."),
        (name = "CameraManager", description = "Eagle Eye CameraManager dialect (specs 003, 004)."),
        (name = "CAM2API", description = "CAM2API dialect (spec 002); each path also with a `.json` suffix."),
        (name = "OAuth", description = "OAuth 2.0 authorization server (RFC 6749, 7009, 7662, 8414, 8628) and OpenID Provider (OpenID Connect Core 1.0, Discovery 1.0, RP-Initiated Logout 1.0)."),
        (name = "Operations", description = "Health, metrics and this document."),
    )
)]
pub struct ApiDoc;

/// Paths the router serves with the same handler as an annotated one: (annotated, alias).
pub const ALIASES: &[(&str, &str)] = &[
    ("/oauth/token", "/oauth/token/"),
    ("/oauth/authorize", "/oauth/authorize/"),
    ("/oauth/revoke", "/oauth/token-revoke/"),
    ("/token/", "/token.json"),
    ("/refresh_token/", "/refresh_token.json"),
    ("/cameras/", "/cameras.json"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// The document as JSON: the derived one plus the aliases.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            // `method(get, post)` shares the request body; a GET has none (RFC 9110 §9.3.1).
            if let Some(op) = item.get_mut("get").and_then(Value::as_object_mut) {
                op.remove("requestBody");
            }
            // ... and one operation id: suffix the method.
            let ids: Vec<&str> = METHODS
                .iter()
                .filter_map(|m| item.get(*m)?.get("operationId")?.as_str())
                .collect();
            let shared = (1..ids.len()).any(|i| ids[..i].contains(&ids[i]));
            if shared {
                for m in METHODS {
                    if let Some(Value::String(id)) =
                        item.get_mut(*m).and_then(|op| op.get_mut("operationId"))
                    {
                        id.push('_');
                        id.push_str(m);
                    }
                }
            }
        }
        for (from, to) in ALIASES {
            let Some(mut item) = paths.get(*from).cloned() else {
                continue;
            };
            let suffix = if to.ends_with(".json") {
                "_json"
            } else if to.ends_with('/') {
                "_slash"
            } else {
                "_alias"
            };
            for m in METHODS {
                if let Some(Value::String(id)) =
                    item.get_mut(*m).and_then(|op| op.get_mut("operationId"))
                {
                    id.push_str(suffix);
                }
            }
            paths.insert((*to).to_string(), item);
        }
    }
    doc
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "Operations",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API.", body = Object)),
)]
pub async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let text = DOC.get_or_init(|| document().to_string());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text.as_str(),
    )
        .into_response()
}
