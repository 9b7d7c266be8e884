//! `GET /openapi.json`: the document is OpenAPI 3.1, it lists exactly the API routes
//! the router serves, every documented operation answers, and real answers validate against
//! the documented schemas (with the `jsonschema` crate, JSON Schema 2020-12, which OpenAPI 3.1
//! schemas are).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::common::*;
use camgate_core::model::{ClientKind, GrantType};
use reqwest::Method;
use serde_json::{json, Value};

/// Every API route the router serves, (method, path) as the document spells it. The
/// browser-only pages are in [`BROWSER_ONLY`]; `router_paths_are_all_listed` keeps both lists
/// complete against the router's source.
const API_ROUTES: &[(&str, &str)] = &[
    ("POST", "/oauth/token"),
    ("POST", "/oauth/token/"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("GET", "/oauth/authorize/"),
    ("POST", "/oauth/authorize/"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/token-revoke/"),
    ("POST", "/oauth/introspect"),
    ("POST", "/oauth/device_authorization"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/oauth/userinfo"),
    ("POST", "/oauth/userinfo"),
    ("GET", "/oauth/logout"),
    ("POST", "/oauth/logout"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/rest/v2.0/users/self"),
    ("DELETE", "/rest/v2.0/users/self/tokens/current"),
    ("GET", "/rest/v2.0/cameras"),
    ("GET", "/v1/me/"),
    ("DELETE", "/v1/me/"),
    ("GET", "/v1/cameras/"),
    ("POST", "/v1/cameras/"),
    ("GET", "/v1/cameras/{id}/"),
    ("PUT", "/v1/cameras/{id}/"),
    ("DELETE", "/v1/cameras/{id}/"),
    ("POST", "/v1/cameras/{id}/heartbeat/"),
    ("POST", "/v1/cameras/{id}/events/"),
    ("GET", "/v1/cameras/{id}/recordings/"),
    ("POST", "/v1/cameras/{id}/recordings/"),
    ("POST", "/v1/cameras/{id}/snapshot/"),
    ("GET", "/v1/events/"),
    ("GET", "/v1/events/stream"),
    ("GET", "/v1/cameras/{id}/shares/"),
    ("POST", "/v1/cameras/{id}/shares/"),
    ("GET", "/v1/cameras/{id}/shares/{share_id}/"),
    ("PUT", "/v1/cameras/{id}/shares/{share_id}/"),
    ("DELETE", "/v1/cameras/{id}/shares/{share_id}/"),
    ("GET", "/v1/dealer/customers/"),
    ("POST", "/v1/dealer/customers/"),
    ("GET", "/v1/webhooks/"),
    ("POST", "/v1/webhooks/"),
    ("GET", "/v1/webhooks/{id}/"),
    ("DELETE", "/v1/webhooks/{id}/"),
    ("GET", "/v1/webhooks/{id}/deliveries/"),
    ("POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/replay/"),
    ("POST", "/token/"),
    ("POST", "/token.json"),
    ("POST", "/refresh_token/"),
    ("POST", "/refresh_token.json"),
    ("GET", "/cameras/"),
    ("GET", "/cameras.json"),
    ("GET", "/health/alive"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// Pages for a browser (HTML forms, cookies, CSRF), left out of the document on purpose (its
/// description says so). Path prefixes.
const BROWSER_ONLY: &[&str] = &[
    "/login",
    "/logout",
    "/consent",
    "/device",
    "/static/",
    "/dashboard",
];

async fn fetch_doc(app: &TestApp) -> Value {
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn document_is_openapi_31_and_lists_exactly_the_api_routes() {
    let app = spawn_app().await;
    let doc = fetch_doc(&app).await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi: {version}");
    assert!(doc["info"]["title"].is_string());
    // Security schemes of the Authorization header and client authentication.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["PersonalAccessToken"]["name"], "Authorization");
    assert_eq!(schemes["JWT"]["in"], "header");
    assert_eq!(schemes["ClientBasic"]["scheme"], "basic");
    // The dashboard is left out, and the description says so.
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("/dashboard/"));

    let want: BTreeSet<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let have = documented(&doc);
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(missing.is_empty(), "routes not documented: {missing:?}");
    assert!(
        extra.is_empty(),
        "documented but not in API_ROUTES: {extra:?}"
    );

    // Operation ids are unique (the aliases get their own).
    let mut ids = BTreeSet::new();
    for (m, p) in &have {
        let id = doc["paths"][p][m.to_lowercase()]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{m} {p} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
    }
    // Every resource operation names the three schemes; every operation documents a 2xx/3xx.
    for (m, p) in &have {
        let op = &doc["paths"][p][m.to_lowercase()];
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{m} {p}: no success response"
        );
        if p.starts_with("/v1/") || p.starts_with("/rest/") || p.starts_with("/cameras") {
            let sec = op["security"].to_string();
            for s in ["Bearer", "PersonalAccessToken", "JWT"] {
                assert!(sec.contains(s), "{m} {p}: security lacks {s}");
            }
            assert!(responses.contains_key("401"), "{m} {p}: 401 undocumented");
        }
    }
}

/// The route paths in the router's source (`.route("…"`): each is either documented or a
/// browser-only page, so a route added without documentation fails here.
#[test]
fn router_paths_are_all_listed() {
    let sources = [
        include_str!("../../src/http/mod.rs"),
        include_str!("../../src/http/cam2.rs"),
        include_str!("../../src/http/dashboard/mod.rs"),
    ];
    let api: BTreeSet<&str> = API_ROUTES.iter().map(|(_, p)| *p).collect();
    let mut seen = 0;
    for src in sources {
        for chunk in src.split(".route(").skip(1) {
            let Some(rest) = chunk.trim_start().strip_prefix('"') else {
                continue;
            };
            let path = &rest[..rest.find('"').unwrap()];
            seen += 1;
            assert!(
                api.contains(path) || BROWSER_ONLY.iter().any(|b| path.starts_with(b)),
                "the router serves {path}, which is neither in API_ROUTES nor BROWSER_ONLY"
            );
        }
    }
    assert!(seen > 40, "parsed only {seen} routes: did the router move?");
    // And every API path is mounted by one of those sources.
    for p in &api {
        assert!(
            sources.iter().any(|s| s.contains(&format!("\"{p}\""))),
            "{p} is in API_ROUTES but not in the router"
        );
    }
}

#[tokio::test]
async fn every_route_answers_and_every_documented_path_exists() {
    let app = spawn_app().await;
    let doc = fetch_doc(&app).await;
    let (_, token) = app.user_with_token("routes@example.com").await;
    // Webhooks to address `/v1/webhooks/{id}/` with (created first: the cameras below queue a
    // delivery each, to address `{delivery_id}` with).
    let mut hook_ids = Vec::new();
    for _ in 0..2 {
        let r = app
            .http
            .post(app.url("/v1/webhooks/"))
            .bearer_auth(&token)
            .json(&json!({"url": "https://93.184.215.14/hook", "events": ["camera.added"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        hook_ids.push(v["id"].as_i64().unwrap());
    }
    // A camera to address `{id}` with (a second one for the DELETE).
    let mut cam_ids = Vec::new();
    for name in ["one", "two"] {
        let r = app
            .http
            .post(app.url("/v1/cameras/"))
            .bearer_auth(&token)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        cam_ids.push(v["id"].as_i64().unwrap());
    }
    // A share of each camera, to address `{share_id}` with.
    let mut share_ids = Vec::new();
    for id in &cam_ids {
        let r = app
            .http
            .post(app.url(&format!("/v1/cameras/{id}/shares/")))
            .bearer_auth(&token)
            .json(&json!({"email": "guest@example.com", "permission": "view"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        share_ids.push(v["id"].as_i64().unwrap());
    }
    let mut delivery_ids = Vec::new();
    for id in &hook_ids {
        let v: Value = app
            .get_bearer(&format!("/v1/webhooks/{id}/deliveries/"), &token)
            .await
            .json()
            .await
            .unwrap();
        delivery_ids.push(v["results"][0]["id"].as_i64().unwrap());
    }
    // Destructive routes last, each with its own (empty) request.
    let mut routes: Vec<(&str, &str)> = API_ROUTES.to_vec();
    routes.sort_by_key(|(m, p)| (*m == "DELETE", *p == "/v1/me/"));
    for (m, p) in routes {
        let which = usize::from(m == "DELETE");
        let ids = if p.starts_with("/v1/webhooks/") {
            &hook_ids
        } else {
            &cam_ids
        };
        let path = p
            .replace("{id}", &ids[which].to_string())
            .replace("{share_id}", &share_ids[which].to_string())
            .replace("{delivery_id}", &delivery_ids[which].to_string());
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let mut req = app.http.request(method, app.url(&path));
        if !p.starts_with("/oauth/") && !p.starts_with("/token") && !p.starts_with("/refresh") {
            req = req.bearer_auth(&token);
        }
        if m == "PUT" {
            req = req.json(&json!({"name": "renamed"}));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{m} {path} answered {status}"
        );
        // The status is one the document lists for that operation.
        let op = &doc["paths"][p][m.to_lowercase()];
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{m} {path}: status {status} is not documented"
        );
    }
}

/// A validator for the schema of (path, method, status) in the document, `$ref`s resolved
/// against the document's components.
fn validator(doc: &Value, path: &str, method: &str, status: u16) -> jsonschema::Validator {
    let schema = doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"]
        .clone();
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no application/json schema"
    );
    let mut root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
    root["allOf"] = json!([schema]);
    root["components"] = doc["components"].clone();
    jsonschema::draft202012::new(&root).unwrap()
}

async fn check(doc: &Value, r: reqwest::Response, path: &str, method: &str) -> Value {
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{method} {path}: {ct}");
    let body: Value = r.json().await.unwrap();
    let v = validator(doc, path, method, status);
    let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {body} does not match its schema: {errors:?}"
    );
    body
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let app = spawn_app().await;
    let doc = fetch_doc(&app).await;
    let (user, token) = app.user_with_token("schemas@example.com").await;
    let h = &app.http;

    // Webhooks (subscribed first: the cameras below queue deliveries).
    let r = h
        .post(app.url("/v1/webhooks/"))
        .bearer_auth(&token)
        .json(&json!({"url": "https://93.184.215.14/hook", "events": ["camera.added"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook = check(&doc, r, "/v1/webhooks/", "post").await;
    let hook_id = hook["id"].as_i64().unwrap();
    check(
        &doc,
        app.get_bearer("/v1/webhooks/", &token).await,
        "/v1/webhooks/",
        "get",
    )
    .await;
    check(
        &doc,
        app.get_bearer(&format!("/v1/webhooks/{hook_id}/"), &token)
            .await,
        "/v1/webhooks/{id}/",
        "get",
    )
    .await;

    // Angelcam.
    let me = check(
        &doc,
        app.get_bearer("/v1/me/", &token).await,
        "/v1/me/",
        "get",
    )
    .await;
    assert_eq!(me["email"], "schemas@example.com");
    let r = h
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "Porch", "type": "h265", "status": "online", "tags": ["a"], "is_public": true,
            "streams": [{"format": "hls", "url": "https://s.example.com/1.m3u8"}],
            "snapshot": {"url": "https://s.example.com/1.jpg"}, "description": "front"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cam = check(&doc, r, "/v1/cameras/", "post").await;
    let id = cam["id"].as_i64().unwrap();
    h.post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bare"}))
        .send()
        .await
        .unwrap();
    let page = check(
        &doc,
        app.get_bearer("/v1/cameras/?limit=1", &token).await,
        "/v1/cameras/",
        "get",
    )
    .await;
    assert_eq!(page["count"], 2);
    assert!(page["next"].is_string() && page["previous"].is_null());
    let one = format!("/v1/cameras/{id}/");
    check(
        &doc,
        app.get_bearer(&one, &token).await,
        "/v1/cameras/{id}/",
        "get",
    )
    .await;
    let r = h
        .put(app.url(&one))
        .bearer_auth(&token)
        .json(&json!({"snapshot": null, "description": null}))
        .send()
        .await
        .unwrap();
    let cam = check(&doc, r, "/v1/cameras/{id}/", "put").await;
    assert!(cam["snapshot"].is_null());
    // Angelcam errors: 401, 404, 400, 415.
    let r = h.get(app.url("/v1/me/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    check(&doc, r, "/v1/me/", "get").await;
    let r = app.get_bearer("/v1/cameras/999999/", &token).await;
    assert_eq!(r.status(), 404);
    check(&doc, r, "/v1/cameras/{id}/", "get").await;
    let r = app.get_bearer("/v1/cameras/?limit=x", &token).await;
    assert_eq!(r.status(), 400);
    check(&doc, r, "/v1/cameras/", "get").await;
    let r = h
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    check(&doc, r, "/v1/cameras/", "post").await;

    // CameraManager.
    let u = check(
        &doc,
        app.get_bearer("/rest/v2.0/users/self", &token).await,
        "/rest/v2.0/users/self",
        "get",
    )
    .await;
    assert_eq!(u["userId"], user.id);
    let cams = check(
        &doc,
        app.get_bearer("/rest/v2.0/cameras", &token).await,
        "/rest/v2.0/cameras",
        "get",
    )
    .await;
    assert_eq!(cams.as_array().unwrap().len(), 2);
    let r = h.get(app.url("/rest/v2.0/cameras")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    check(&doc, r, "/rest/v2.0/cameras", "get").await;

    // CAM2API: a client-credentials client owned by the user, its JWT, the camera search.
    let mut input = client_input("cam2 app", ClientKind::Confidential, "cam2");
    input.owner_id = Some(user.id);
    input.grants = vec![GrantType::ClientCredentials];
    let reg = app.register(input).await;
    let (cid, secret) = (reg.client.client_id, reg.secret.unwrap());
    let r = h
        .post(app.url("/token.json"))
        .json(&json!({"client_id": cid, "client_secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = check(&doc, r, "/token.json", "post").await;
    let jwt = t["token"].as_str().unwrap().to_string();
    let r = h
        .get(app.url("/cameras/"))
        .header("Authorization", format!("JWT {jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found = check(&doc, r, "/cameras/", "get").await;
    assert!(!found.as_array().unwrap().is_empty());
    let r = h
        .post(app.url("/refresh_token/"))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(&doc, r, "/refresh_token/", "post").await;
    let r = h
        .post(app.url("/token/"))
        .form(&[("client_id", cid.as_str()), ("client_secret", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    check(&doc, r, "/token/", "post").await;
    let r = h
        .get(app.url("/cameras.json?video=maybe"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    check(&doc, r, "/cameras.json", "get").await;
    let r = app.get_bearer("/.well-known/jwks.json", "-").await;
    let jwks = check(&doc, r, "/.well-known/jwks.json", "get").await;
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    // OAuth: password grant, errors, introspection, revocation, metadata.
    let public = app.public_client("angelcam").await;
    let r = app
        .token_form(&[
            ("client_id", public.as_str()),
            ("grant_type", "password"),
            ("username", "schemas@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let tok = check(&doc, r, "/oauth/token/", "post").await;
    assert!(tok["refresh_token"].is_string());
    let r = app
        .token_form(&[("client_id", public.as_str()), ("grant_type", "nope")])
        .await;
    assert_eq!(r.status(), 400);
    check(&doc, r, "/oauth/token/", "post").await;
    let (conf, conf_secret) = app.confidential_client("angelcam").await;
    for t in [token.as_str(), "unknown-token"] {
        let r = h
            .post(app.url("/oauth/introspect"))
            .basic_auth(&conf, Some(&conf_secret))
            .form(&[("token", t)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let i = check(&doc, r, "/oauth/introspect", "post").await;
        assert_eq!(i["active"], t == token);
    }
    let r = h
        .post(app.url("/oauth/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    check(&doc, r, "/oauth/revoke", "post").await;
    let r = h
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    check(&doc, r, "/.well-known/oauth-authorization-server", "get").await;

    // The webhook's delivery log and a replay.
    let log = check(
        &doc,
        app.get_bearer(
            &format!("/v1/webhooks/{hook_id}/deliveries/?limit=1"),
            &token,
        )
        .await,
        "/v1/webhooks/{id}/deliveries/",
        "get",
    )
    .await;
    assert!(log["next"].is_string());
    let delivery = log["results"][0]["id"].as_i64().unwrap();
    let r = h
        .post(app.url(&format!(
            "/v1/webhooks/{hook_id}/deliveries/{delivery}/replay/"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    check(
        &doc,
        r,
        "/v1/webhooks/{id}/deliveries/{delivery_id}/replay/",
        "post",
    )
    .await;

    // Operations.
    for p in ["/health/alive", "/health/ready"] {
        let r = h.get(app.url(p)).send().await.unwrap();
        check(&doc, r, p, "get").await;
    }
    let r = h.get(app.url("/metrics")).send().await.unwrap();
    assert!(
        doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"].is_object()
    );
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    // The authorization endpoint answers pages and redirects, as documented.
    let r = h.get(app.url("/oauth/authorize")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        doc["paths"]["/oauth/authorize"]["get"]["responses"]["400"]["content"]["text/html"]
            .is_object()
    );

    // The validator is not vacuous: a body missing a required member fails.
    let v = validator(&doc, "/v1/me/", "get", 200);
    let mut bad = me.clone();
    bad.as_object_mut().unwrap().remove("email");
    assert!(!v.is_valid(&bad));
    assert!(v.is_valid(&me));
}

/// Every example in the document (component schemas, request bodies) is valid against the
/// schema it illustrates.
#[tokio::test]
async fn documented_examples_match_their_schemas() {
    let app = spawn_app().await;
    let doc = fetch_doc(&app).await;
    let mut checked = 0;
    let validate = |schema: &Value, example: &Value, what: &str| {
        let mut root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
        root["allOf"] = json!([schema]);
        root["components"] = doc["components"].clone();
        let v = jsonschema::draft202012::new(&root).unwrap();
        let errors: Vec<String> = v.iter_errors(example).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{what}: example {example} is invalid: {errors:?}"
        );
    };
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            let mut s = schema.clone();
            s.as_object_mut().unwrap().remove("example");
            validate(&s, example, name);
            checked += 1;
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            for (ct, media) in content {
                let schema = &media["schema"];
                let example = media.get("example").cloned().or_else(|| {
                    let r = schema["$ref"].as_str()?.rsplit('/').next()?.to_string();
                    doc["components"]["schemas"][r].get("example").cloned()
                });
                if let Some(example) = example {
                    validate(schema, &example, &format!("{method} {path} {ct}"));
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} examples checked");
}
