//! CAM2API cameras (the CAM2API specification, and the behaviour its clients rely on that it leaves
//! unwritten: the filters and paging described on each function here): the search
//! behind `GET /cameras/` — every CAM2 filter, a radius search, limit/offset — and the row
//! conversion of `camgate camera import`.
//!
//! Radius search: the store narrows rows to the bounding box of the spherical cap (an
//! indexable `lat`/`lng` range, split in two at the antimeridian, opened to every longitude
//! when the cap covers a pole), then the exact great-circle distance (haversine) is checked
//! here: the spatial index's cells in the box first (no row read), those that cannot reach the
//! circle dropped, then the rows of the rest in id order, a chunk of ids at a time, until the
//! page is full. SQLite has no trigonometric functions, and this way both backends give the
//! same, exact answer.

pub use crate::store::records::{CameraQuery, GeoBox, GeoCell, NewCamera};
use std::collections::HashMap;

use crate::cameras::{validate, Page};
use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::model::{Camera, CameraFields, CameraId, UserId};
use crate::principal::Principal;
use crate::Core;

/// Default page size of `GET /cameras/`.
pub const CAM2_PAGE_DEFAULT: i64 = 100;
/// Maximum page size of `GET /cameras/` (larger limits are clamped).
pub const CAM2_PAGE_MAX: i64 = 1000;
/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;
/// The most ids a radius search reads rows for in one statement (the chunks grow to this).
const RADIUS_CHUNK_MAX: usize = 4096;

/// The CAM2 camera fields, in the order CAM2API lists them (and the import's column names).
pub const CAM2_FIELDS: [&str; 19] = [
    "camera_id",
    "city",
    "state",
    "country",
    "lat",
    "lng",
    "source",
    "source_url",
    "camera_type",
    "description",
    "is_video",
    "framerate",
    "outdoors",
    "traffic",
    "inactive",
    "resolution_w",
    "resolution_h",
    "date_added",
    "last_updated",
];

/// `near=lat,lng&radius_km=R`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub lat: f64,
    pub lng: f64,
    pub radius_km: f64,
}

/// A parsed `GET /cameras/` request (everything but who is asking).
#[derive(Debug, Clone, PartialEq)]
pub struct Cam2Search {
    pub query: CameraQuery,
    pub near: Option<Near>,
    pub page: Page,
}

/// Great-circle distance in km (haversine formula, spherical Earth of mean radius).
pub fn great_circle_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// The bounding box of the spherical cap of `radius_km` around a point (J. P. Matuschek,
/// "Finding Points Within a Distance of a Latitude/Longitude Using Bounding Coordinates"),
/// widened by a hair so float rounding can never drop a point the exact check keeps.
pub fn bounding_box(n: &Near) -> GeoBox {
    const EPS: f64 = 1e-6;
    let r = n.radius_km / EARTH_RADIUS_KM;
    let lat = n.lat.to_radians();
    let lng = n.lng.to_radians();
    let (lat_min, lat_max) = (lat - r, lat + r);
    let pi = std::f64::consts::PI;
    let half_pi = std::f64::consts::FRAC_PI_2;
    if r >= pi || lat_min <= -half_pi || lat_max >= half_pi {
        // The cap contains a pole: every longitude.
        return GeoBox {
            lat_min: lat_min.max(-half_pi).to_degrees() - EPS,
            lat_max: lat_max.min(half_pi).to_degrees() + EPS,
            lng_ranges: Vec::new(),
        };
    }
    let dl = (r.sin() / lat.cos()).min(1.0).asin();
    let (lo, hi) = (lng - dl, lng + dl);
    let deg = |x: f64| x.to_degrees();
    let lng_ranges = if lo < -pi {
        vec![(deg(lo + 2.0 * pi) - EPS, 180.0), (-180.0, deg(hi) + EPS)]
    } else if hi > pi {
        vec![(deg(lo) - EPS, 180.0), (-180.0, deg(hi - 2.0 * pi) + EPS)]
    } else {
        vec![(deg(lo) - EPS, deg(hi) + EPS)]
    };
    GeoBox {
        lat_min: deg(lat_min) - EPS,
        lat_max: deg(lat_max) + EPS,
        lng_ranges,
    }
}

/// False only if no point of `c` can lie within the circle of `n`: the distance to the cell's
/// middle, less the farthest a point of the cell can be from it (along a meridian, then a
/// parallel, which is no shorter than the great circle), less a metre for float rounding,
/// exceeds the radius. A cell it keeps still gets the exact check on the row's position.
fn may_reach(n: &Near, c: &GeoCell) -> bool {
    let (lat, lng) = ((c.lat_min + c.lat_max) / 2.0, (c.lng_min + c.lng_max) / 2.0);
    let reach = ((c.lat_max - c.lat_min).abs() + (c.lng_max - c.lng_min).abs()) / 2.0;
    let reach_km = reach.to_radians() * EARTH_RADIUS_KM + 1e-3;
    great_circle_km(n.lat, n.lng, lat, lng) - reach_km <= n.radius_km
}

fn bad(param: &str, what: &str) -> ApiError {
    ApiError::invalid(param, format!("`{param}`: {what}"))
}

fn parse_f64(param: &str, v: &str) -> Result<f64, ApiError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(bad(param, "must be a number.")),
    }
}

fn parse_i64(param: &str, v: &str) -> Result<i64, ApiError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| bad(param, "must be a whole number."))
}

/// `true/false`, `1/0`, `yes/no`, `t/f`, `on/off`, any case.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "t" | "y" | "on" => Some(true),
        "false" | "0" | "no" | "f" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// A date or time: RFC 3339 (`2020-01-31T12:00:00Z`, any offset), `YYYY-MM-DD HH:MM:SS`
/// (UTC), `YYYY-MM-DD` (midnight UTC) or Unix seconds.
pub fn parse_time(v: &str) -> Option<Timestamp> {
    let v = v.trim();
    if let Ok(t) = v.parse::<i64>() {
        return Some(t);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(d.timestamp());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Some(d.and_utc().timestamp());
        }
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

fn parse_date(param: &str, v: &str) -> Result<Timestamp, ApiError> {
    parse_time(v).ok_or_else(|| {
        bad(
            param,
            "must be a date (YYYY-MM-DD), an RFC 3339 date-time or Unix seconds.",
        )
    })
}

impl Cam2Search {
    /// Parses the query parameters of `GET /cameras/`. Unknown parameters are ignored (as
    /// django-filter does); a known one that does not parse, or one given twice, is an error
    /// naming it.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut m: HashMap<&str, &str> = HashMap::new();
        for (k, v) in pairs {
            if m.insert(k.as_str(), v.as_str()).is_some() {
                let shown: String = k.chars().take(40).collect();
                return Err(bad(&shown, "given more than once."));
            }
        }
        let text = |k: &str| {
            m.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut q = CameraQuery {
            city: text("city"),
            state: text("state"),
            country: text("country"),
            camera_type: text("camera_type"),
            source: text("source"),
            ..Default::default()
        };
        if let Some(t) = &q.camera_type {
            if t != "IP" && t != "Non_IP" {
                return Err(bad("camera_type", "must be IP or Non_IP."));
            }
        }
        let get = |k: &str| m.get(k).copied().filter(|v| !v.trim().is_empty());
        macro_rules! num {
            ($($field:ident: $parse:ident),*) => {$(
                if let Some(v) = get(stringify!($field)) {
                    q.$field = Some($parse(stringify!($field), v)?);
                }
            )*};
        }
        num!(lat_min: parse_f64, lat_max: parse_f64, lng_min: parse_f64, lng_max: parse_f64,
             resolution_w_min: parse_i64, resolution_w_max: parse_i64,
             resolution_h_min: parse_i64, resolution_h_max: parse_i64,
             framerate_min: parse_f64, framerate_max: parse_f64,
             added_before: parse_date, added_after: parse_date,
             updated_before: parse_date, updated_after: parse_date);
        for (param, slot) in [
            ("video", &mut q.is_video),
            ("outdoors", &mut q.outdoors),
            ("traffic", &mut q.traffic),
            ("inactive", &mut q.inactive),
        ] {
            if let Some(v) = get(param) {
                *slot = Some(parse_bool(v).ok_or_else(|| bad(param, "must be true or false."))?);
            }
        }
        let near = match (get("near"), get("radius_km")) {
            (None, None) => None,
            (Some(_), None) => return Err(bad("radius_km", "is required with `near`.")),
            (None, Some(_)) => return Err(bad("near", "is required with `radius_km`.")),
            (Some(n), Some(r)) => {
                let bad_near = || bad("near", "must be `lat,lng` in degrees.");
                let (la, ln) = n.split_once(',').ok_or_else(bad_near)?;
                let lat = parse_f64("near", la).map_err(|_| bad_near())?;
                let lng = parse_f64("near", ln).map_err(|_| bad_near())?;
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                    return Err(bad_near());
                }
                let radius_km = parse_f64("radius_km", r)?;
                if radius_km <= 0.0 {
                    return Err(bad("radius_km", "must be a positive number."));
                }
                Some(Near {
                    lat,
                    lng,
                    radius_km,
                })
            }
        };
        let limit = get("limit");
        let page = Page::parse(limit, get("offset"), CAM2_PAGE_MAX)?;
        let page = if limit.is_none() {
            Page {
                limit: CAM2_PAGE_DEFAULT,
                ..page
            }
        } else {
            page
        };
        Ok(Self {
            query: q,
            near,
            page,
        })
    }
}

/// Reads one import row through `get` (a column's value by CAM2 field name; empty = absent).
/// `camera_id` is the source system's id and is not kept (camgate numbers its cameras);
/// `name` and `is_public` columns are optional extras. Errors name the field.
pub fn import_row<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    now: Timestamp,
    public: bool,
) -> Result<NewCamera, String> {
    let text = |k: &str| get(k).map(str::trim).filter(|v| !v.is_empty());
    let s = |k: &str| text(k).map(str::to_string);
    let f64_of = |k: &str| -> Result<Option<f64>, String> {
        text(k)
            .map(|v| match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(format!("{k}: `{}` is not a number", shorten(v))),
            })
            .transpose()
    };
    let i64_of = |k: &str| -> Result<Option<i64>, String> {
        text(k)
            .map(|v| {
                v.parse::<i64>()
                    .or_else(|_| match v.parse::<f64>() {
                        Ok(x) if x.fract() == 0.0 && x.abs() < 1e15 => Ok(x as i64),
                        _ => Err(()),
                    })
                    .map_err(|_| format!("{k}: `{}` is not a whole number", shorten(v)))
            })
            .transpose()
    };
    let bool_of = |k: &str| -> Result<Option<bool>, String> {
        text(k)
            .map(|v| {
                parse_bool(v).ok_or_else(|| format!("{k}: `{}` is not true/false", shorten(v)))
            })
            .transpose()
    };
    let time_of = |k: &str| -> Result<Option<Timestamp>, String> {
        text(k)
            .map(|v| parse_time(v).ok_or_else(|| format!("{k}: `{}` is not a date", shorten(v))))
            .transpose()
    };
    let city = s("city");
    let country = s("country");
    let description = s("description");
    let name = s("name")
        .or_else(|| description.as_ref().map(|d| d.chars().take(255).collect()))
        .or_else(|| match (&city, &country) {
            (Some(c), Some(k)) => Some(format!("{c}, {k}")),
            (Some(c), None) => Some(c.clone()),
            (None, Some(k)) => Some(k.clone()),
            _ => None,
        })
        .or_else(|| s("camera_id").map(|id| format!("Camera {id}")))
        .unwrap_or_else(|| "Camera".to_string());
    let mut f = CameraFields::named(name);
    f.city = city;
    f.state = s("state");
    f.country = country;
    f.lat = f64_of("lat")?;
    f.lng = f64_of("lng")?;
    f.source = s("source");
    f.source_url = s("source_url");
    f.camera_type = s("camera_type");
    f.description = description;
    f.is_video = bool_of("is_video")?;
    f.framerate = f64_of("framerate")?;
    f.outdoors = bool_of("outdoors")?;
    f.traffic = bool_of("traffic")?;
    f.inactive = bool_of("inactive")?;
    f.resolution_w = i64_of("resolution_w")?;
    f.resolution_h = i64_of("resolution_h")?;
    f.is_public = bool_of("is_public")?.unwrap_or(public);
    validate(&f).map_err(|e| match e {
        ApiError::Invalid {
            field: Some(field),
            message,
        } => format!("{field}: {message}"),
        other => other.to_string(),
    })?;
    let created_at = time_of("date_added")?.unwrap_or(now);
    let updated_at = time_of("last_updated")?.unwrap_or(created_at);
    Ok(NewCamera {
        fields: f,
        created_at,
        updated_at,
    })
}

fn shorten(v: &str) -> String {
    let mut s: String = v.chars().take(40).collect();
    if s.len() < v.len() {
        s.push('…');
    }
    s
}

impl Core {
    /// `GET /cameras/`: the caller's cameras (a user's own, or for a client-credentials token
    /// its client owner's) and every public camera, filtered, in id order.
    pub async fn cam2_cameras(
        &self,
        who: &Principal,
        search: Cam2Search,
    ) -> Result<Vec<Camera>, ApiError> {
        let mut cams = self.cam2_search(who, search).await?;
        // Cameras shared with the caller are in the results; say so, as every listing does.
        self.mark_shared(who.owner_id(), &mut cams).await?;
        Ok(cams)
    }

    async fn cam2_search(
        &self,
        who: &Principal,
        search: Cam2Search,
    ) -> Result<Vec<Camera>, ApiError> {
        let mut q = search.query;
        q.owner = who.owner_id();
        let page = search.page;
        let Some(near) = search.near else {
            return Ok(self
                .store
                .search_cameras(&q, 0, page.offset, page.limit)
                .await?);
        };
        let bbox = bounding_box(&near);
        // The spatial index's cells in the box, without reading a row; the cells that cannot
        // reach the circle are left out here. The rows are then read in id order, a chunk of
        // ids at a time, with every filter and the exact distance, until the page is full:
        // a page reads about as many rows as it shows, however many cameras the box holds.
        let mut ids: Vec<CameraId> = self
            .store
            .camera_cells(&bbox)
            .await?
            .into_iter()
            .filter(|c| may_reach(&near, c))
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        q.bbox = Some(bbox);
        let (offset, limit) = (page.offset.max(0) as usize, page.limit.max(0) as usize);
        let mut skip = offset;
        let mut out = Vec::new();
        let want = offset.saturating_add(limit);
        let mut chunk = want
            .saturating_add(want / 4)
            .saturating_add(16)
            .min(RADIUS_CHUNK_MAX);
        let mut rest = &ids[..];
        while !rest.is_empty() && out.len() < limit {
            let (head, tail) = rest.split_at(chunk.min(rest.len()));
            for cam in self.store.search_cameras_among(&q, head).await? {
                let (Some(lat), Some(lng)) = (cam.fields.lat, cam.fields.lng) else {
                    continue;
                };
                if great_circle_km(near.lat, near.lng, lat, lng) > near.radius_km {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(cam);
                if out.len() >= limit {
                    break;
                }
            }
            rest = tail;
            chunk = chunk.saturating_mul(4).min(RADIUS_CHUNK_MAX);
        }
        Ok(out)
    }

    /// Inserts one batch of imported cameras in one transaction.
    pub async fn import_cameras(&self, owner: UserId, rows: &[NewCamera]) -> Result<u64, ApiError> {
        Ok(self.store.import_cameras(owner, rows).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn distance_known_values() {
        // Paris – London ≈ 343.5 km; antipodes = half the circumference.
        let d = great_circle_km(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343.5).abs() < 1.0, "{d}");
        let half = great_circle_km(0.0, 0.0, 0.0, 180.0);
        assert!((half - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }

    /// The point `km` from `lat`,`lng` on bearing `brg` (radians), longitude in [-180, 180).
    fn destination(lat: f64, lng: f64, brg: f64, km: f64) -> (f64, f64) {
        let d = km / EARTH_RADIUS_KM;
        let (p1, l1) = (lat.to_radians(), lng.to_radians());
        let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * brg.cos()).asin();
        let l2 = l1 + (brg.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
        let lng2 = (l2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        (p2.to_degrees(), lng2)
    }

    /// A cell as R*Tree stores a point: 32-bit bounds rounded outward.
    fn f32_cell(lat: f64, lng: f64) -> GeoCell {
        let down = |x: f64| {
            let f = x as f32;
            if f64::from(f) > x {
                f.next_down()
            } else {
                f
            }
        };
        let up = |x: f64| {
            let f = x as f32;
            if f64::from(f) < x {
                f.next_up()
            } else {
                f
            }
        };
        GeoCell {
            id: 1,
            lat_min: down(lat).into(),
            lat_max: up(lat).into(),
            lng_min: down(lng).into(),
            lng_max: up(lng).into(),
        }
    }

    /// The pre-check never drops a point that the exact check keeps (points on and just
    /// inside the circle, exact and rounded cells), and it does drop a cell far outside.
    #[test]
    fn a_cell_is_dropped_only_if_its_point_cannot_be_within() {
        for (lat, lng, r) in [
            (-55.086, -155.846, 25.0),
            (35.0, 139.0, 0.5),
            (10.0, 179.99, 300.0),
            (89.9, 10.0, 40.0),
            (0.0, 0.0, 19_000.0),
        ] {
            let n = Near {
                lat,
                lng,
                radius_km: r,
            };
            for i in 0..720 {
                let brg = (f64::from(i) / 2.0).to_radians();
                for frac in [0.5, 0.999_999, 0.999_999_999, 1.0] {
                    let (plat, plng) = destination(lat, lng, brg, r * frac);
                    if great_circle_km(lat, lng, plat, plng) > r {
                        continue;
                    }
                    let exact = GeoCell {
                        id: 1,
                        lat_min: plat,
                        lat_max: plat,
                        lng_min: plng,
                        lng_max: plng,
                    };
                    assert!(may_reach(&n, &exact), "{plat},{plng} around {lat},{lng}");
                    assert!(may_reach(&n, &f32_cell(plat, plng)), "{plat},{plng} (f32)");
                }
            }
        }
        let n = Near {
            lat: 0.0,
            lng: 0.0,
            radius_km: 10.0,
        };
        assert!(!may_reach(&n, &f32_cell(0.0, 0.1)), "11 km away");
        assert!(may_reach(&n, &f32_cell(0.0, 0.089)), "9.9 km away");
    }

    #[test]
    fn bounding_box_contains_the_cap() {
        // Points on the circle of the cap must lie in the box, including across the
        // antimeridian and near a pole.
        for (lat, lng, r) in [
            (35.0, 139.0, 50.0),
            (10.0, 179.9, 300.0),
            (-20.0, -179.5, 500.0),
            (89.0, 0.0, 300.0),
            (0.0, 0.0, 30_000.0),
        ] {
            let n = Near {
                lat,
                lng,
                radius_km: r,
            };
            let b = bounding_box(&n);
            for i in 0..360 {
                let brg = (i as f64).to_radians();
                let (p2, l2) = destination(lat, lng, brg, r * 0.999_999);
                assert!(
                    p2 >= b.lat_min && p2 <= b.lat_max,
                    "{lat},{lng},{r}: lat {p2}"
                );
                assert!(
                    b.lng_ranges.is_empty()
                        || b.lng_ranges.iter().any(|(a, z)| l2 >= *a && l2 <= *z),
                    "{lat},{lng},{r}: lng {l2} not in {:?}",
                    b.lng_ranges
                );
            }
        }
    }

    #[test]
    fn search_parsing() {
        let s = Cam2Search::parse(&pairs(&[
            ("city", "Tokyo"),
            ("lat_min", "35.1"),
            ("video", "true"),
            ("added_after", "2020-01-02"),
            ("near", "35.6,139.7"),
            ("radius_km", "10"),
            ("unknown", "x"),
        ]))
        .unwrap();
        assert_eq!(s.query.city.as_deref(), Some("Tokyo"));
        assert_eq!(s.query.lat_min, Some(35.1));
        assert_eq!(s.query.is_video, Some(true));
        assert_eq!(s.query.added_after, Some(1_577_923_200));
        assert_eq!(s.near.unwrap().radius_km, 10.0);
        assert_eq!(s.page.limit, 100);
        assert_eq!(
            Cam2Search::parse(&pairs(&[("limit", "5000")]))
                .unwrap()
                .page
                .limit,
            1000
        );
        for (k, v) in [
            ("lat_min", "north"),
            ("video", "maybe"),
            ("added_before", "yesterday"),
            ("resolution_w_min", "1.5"),
            ("near", "1"),
            ("camera_type", "analog"),
            ("limit", "0"),
        ] {
            match Cam2Search::parse(&pairs(&[(k, v), ("radius_km", "1"), ("near", "1,1")])) {
                Err(ApiError::Invalid { field, .. }) if k == "near" => {
                    assert_eq!(field.as_deref(), Some("near"))
                }
                Err(ApiError::Invalid { .. }) if k == "near" => {}
                Err(ApiError::Invalid { field, .. }) => assert_eq!(field.as_deref(), Some(k)),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
    }

    #[test]
    fn import_rows() {
        let row: HashMap<&str, &str> = [
            ("camera_id", "123"),
            ("city", "Shinjuku-ku"),
            ("country", "JP"),
            ("lat", "35.6895"),
            ("lng", "139.6917"),
            ("camera_type", "IP"),
            ("is_video", "True"),
            ("resolution_w", "1920"),
            ("date_added", "2019-05-01"),
        ]
        .into_iter()
        .collect();
        let c = import_row(|k| row.get(k).copied(), 1_000, false).unwrap();
        assert_eq!(c.fields.name, "Shinjuku-ku, JP");
        assert_eq!(c.fields.is_video, Some(true));
        assert_eq!(c.created_at, 1_556_668_800);
        assert_eq!(c.updated_at, c.created_at);
        let bad: HashMap<&str, &str> = [("lat", "91")].into_iter().collect();
        let e = import_row(|k| bad.get(k).copied(), 0, false).unwrap_err();
        assert!(e.starts_with("lat:"), "{e}");
        let bad: HashMap<&str, &str> = [("framerate", "fast")].into_iter().collect();
        assert!(import_row(|k| bad.get(k).copied(), 0, false)
            .unwrap_err()
            .starts_with("framerate:"));
    }
}
