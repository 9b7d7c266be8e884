//! Account → two-factor sign-in: set up an authenticator app (QR code, key, first code),
//! recovery codes shown once, and turning it off (password and a code). The rules are in
//! `camgate_core::mfa`.

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use base64::Engine;

use camgate_core::mfa::TotpEnrolment;
use camgate_core::oauth::Caller;

use super::{done, html, ok, read_form, Dash, Errs, Nav, NoticeQuery, Res};
use crate::http::auth::ClientIp;
use crate::http::AppState;

pub enum TwoFactorState {
    Off,
    Pending {
        qr_data_uri: String,
        secret: String,
        otpauth_uri: String,
    },
    On {
        recovery_left: i64,
    },
    Codes {
        codes: Vec<String>,
    },
}

#[derive(Template)]
#[template(path = "dashboard/two_factor.html")]
struct TwoFactorPage {
    nav: Nav,
    state: TwoFactorState,
    errors: Errs,
}

fn pending(e: TotpEnrolment) -> TwoFactorState {
    let b64 = base64::engine::general_purpose::STANDARD.encode(e.qr_svg.as_bytes());
    TwoFactorState::Pending {
        qr_data_uri: format!("data:image/svg+xml;base64,{b64}"),
        secret: e.secret_base32,
        otpauth_uri: e.otpauth_uri,
    }
}

async fn state(s: &AppState, d: &Dash) -> Result<TwoFactorState, super::DashError> {
    let u = d.user();
    if s.core.has_totp(u.id).await? {
        return Ok(TwoFactorState::On {
            recovery_left: s.core.recovery_codes_left(u.id).await?,
        });
    }
    Ok(match s.core.pending_totp(u).await? {
        Some(e) => pending(e),
        None => TwoFactorState::Off,
    })
}

pub async fn page(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let state = state(&s, &d).await?;
    Ok(ok(&TwoFactorPage {
        nav: d.nav("account", q.notice()),
        state,
        errors: Errs::none(),
    }))
}

pub async fn setup(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    read_form(&s, &d, req).await?;
    s.core.start_totp(d.user()).await?;
    Ok(done("/dashboard/account/two-factor/", "two-factor-setup"))
}

pub async fn confirm(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    match s.core.confirm_totp(d.user(), f.get("code")).await {
        Ok(codes) => Ok(ok(&TwoFactorPage {
            nav: d.nav("account", None),
            state: TwoFactorState::Codes { codes },
            errors: Errs::none(),
        })),
        Err(e) => {
            let errors = Errs::from_api(e, &["code"])?;
            let state = state(&s, &d).await?;
            Ok(html(
                StatusCode::BAD_REQUEST,
                &TwoFactorPage {
                    nav: d.nav("account", None),
                    state,
                    errors,
                },
            ))
        }
    }
}

pub async fn disable(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    d: Dash,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    match s
        .core
        .disable_totp(d.user(), f.get("password"), f.get("code"), &Caller { ip })
        .await
    {
        Ok(()) => Ok(done("/dashboard/account/two-factor/", "two-factor-off")),
        Err(e) => {
            let errors = Errs::from_api(e, &["password", "code"])?;
            let state = state(&s, &d).await?;
            Ok(html(
                StatusCode::BAD_REQUEST,
                &TwoFactorPage {
                    nav: d.nav("account", None),
                    state,
                    errors,
                },
            ))
        }
    }
}
