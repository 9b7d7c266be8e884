//! A browser over plain HTTP for the black-box tests of the browser pages: a hand-kept cookie
//! jar on top of the app's HTTP client (redirects are not followed), answers with their body
//! read, the hidden form fields the pages carry, and optionally the dashboard's CSRF token.
//! Used (`use crate::common::session::*`) by the suites that sign in through the pages
//! (authorize, dashboard, adversarial, client).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;

use reqwest::header::HeaderMap;

use crate::common::TestApp;

/// The name of the browser-session cookie.
pub const SESSION: &str = "__Host-camgate_session";

/// An answer with its body read.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The `Location` header; panics when there is none.
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .unwrap_or_else(|| panic!("no Location; status {} body {}", self.status, self.body))
            .to_str()
            .unwrap()
            .to_string()
    }
    /// A header's value, or "" when it is absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.status, 200, "{}", self.body);
        self
    }
    #[track_caller]
    pub fn has(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "missing {text:?} (status {}) in\n{}",
            self.status,
            self.body
        );
        self
    }
    #[track_caller]
    pub fn lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "unexpected {text:?} in\n{}",
            self.body
        );
        self
    }
    /// The error shown beside field `id` (`<p class="field-error" id="{id}-error">`).
    #[track_caller]
    pub fn field_error(&self, id: &str) -> String {
        let needle = format!("<p class=\"field-error\" id=\"{id}-error\">");
        let i = self.body.find(&needle).unwrap_or_else(|| {
            panic!(
                "no error beside {id} (status {}) in\n{}",
                self.status, self.body
            )
        }) + needle.len();
        let end = self.body[i..].find("</p>").unwrap();
        assert!(
            self.body
                .contains(&format!("aria-describedby=\"{id}-error\"")),
            "the field {id} does not point at its error"
        );
        self.body[i..i + end].to_string()
    }
}

/// A browser: a cookie jar on top of the app's HTTP client (redirects are not followed), and
/// the session's CSRF token once [`Browser::csrf`] has read it (forgotten when the session
/// cookie changes).
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub jar: HashMap<String, String>,
    pub csrf: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            jar: HashMap::new(),
            csrf: None,
        }
    }

    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Reads the answer: keeps its cookies (a `Max-Age=0` one is dropped) and its body.
    pub async fn finish(&mut self, r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        for c in headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (nv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (n, v) = nv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(n);
            } else {
                self.jar.insert(n.to_string(), v.to_string());
            }
            if n == SESSION {
                self.csrf = None;
            }
        }
        let body = r.text().await.unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// An absolute URL as is; a path on the app.
    fn abs(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            self.app.url(path)
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let r = self
            .app
            .http
            .get(self.abs(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// POSTs a form as is (no CSRF token added).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let r = self
            .app
            .http
            .post(self.abs(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// The session's CSRF token, read from a dashboard page.
    pub async fn csrf(&mut self) -> String {
        if let Some(t) = &self.csrf {
            return t.clone();
        }
        let page = self.get("/dashboard/").await;
        let t = hidden(&page.body, "csrf_token");
        self.csrf = Some(t.clone());
        t
    }

    /// POSTs a dashboard form with the session's CSRF token put first.
    pub async fn post_csrf(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf().await;
        let mut f = vec![("csrf_token", csrf.as_str())];
        f.extend_from_slice(form);
        self.post(path, &f).await
    }

    /// Signs in through the login page at `path` (`/login`, `/login?request_id=…`): its form
    /// with its CSRF token and, when it has one, its request id.
    pub async fn sign_in_at(&mut self, path: &str, email: &str, password: &str) -> Resp {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf_token");
        let mut form = vec![
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ];
        let rid = hidden_opt(&page.body, "request_id");
        if let Some(r) = &rid {
            form.push(("request_id", r.as_str()));
        }
        self.post("/login", &form).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Resp {
        self.sign_in_at("/login", email, password).await
    }

    /// Decides on the approval screen shown in `page`.
    pub async fn decide(&mut self, page: &Resp, decision: &str) -> Resp {
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf_token");
        let rid = hidden(&page.body, "request_id");
        self.post(
            "/consent",
            &[
                ("csrf_token", csrf.as_str()),
                ("request_id", rid.as_str()),
                ("decision", decision),
            ],
        )
        .await
    }
}

/// The value of the hidden field `name` in a page.
pub fn hidden_opt(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let i = body.find(&needle)? + needle.len();
    let end = body[i..].find('"')?;
    Some(body[i..i + end].to_string())
}

#[track_caller]
pub fn hidden(body: &str, name: &str) -> String {
    hidden_opt(body, name).unwrap_or_else(|| panic!("no hidden field {name} in {body}"))
}

/// `params` as a query string (`application/x-www-form-urlencoded`).
pub fn encode(params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}
