//! `camgate serve --demo`: fills an empty database with the spec documents' fixtures so every
//! curl command in them works as written (host aside), and prints how to use them.

use camgate_core::clients::ClientInput;
use camgate_core::error::ApiError;
use camgate_core::model::{
    CameraFields, CameraStatus, ClientKind, GrantType, IdTokenAlg, JwtAlg, OidcClient, Snapshot,
    Stream, SubjectType, VideoCodec,
};
use camgate_core::scope::ScopeSet;
use camgate_core::users::UserInput;
use camgate_core::Core;

pub const DEMO_EMAIL: &str = "user@example.com";
pub const DEMO_PASSWORD: &str = "secret";
pub const ANGELCAM_CLIENT_ID: &str = "DBaJcGbAT2Tbvbrz0fLh1uRmYURprJAQPxwFsgoo";
pub const CM_CLIENT_ID: &str = "cameramanager.test";
pub const CM_CLIENT_SECRET: &str = "qwertyuiopasdfghjklzxcvbnm12345";
pub const CAM2_CLIENT_ID: &str = "cam2.demo";
pub const CAM2_CLIENT_SECRET: &str = "cam2-demo-secret-0123456789";
/// A public client allowed the device authorization grant (RFC 8628).
pub const DEVICE_CLIENT_ID: &str = "camgate.device.demo";
/// A confidential OpenID Connect relying party: RS256 id_tokens, public subject identifiers.
pub const OIDC_CLIENT_ID: &str = "camgate.oidc.demo";
pub const OIDC_CLIENT_SECRET: &str = "oidc-demo-secret-0123456789";
/// Another one with ES256 id_tokens and pairwise subject identifiers.
pub const OIDC_PAIRWISE_CLIENT_ID: &str = "camgate.oidc.pairwise.demo";
pub const OIDC_PAIRWISE_CLIENT_SECRET: &str = "oidc-pairwise-secret-0123456789";
/// Where the demo relying parties return (loopback: nothing needs to listen there).
pub const OIDC_REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";
pub const OIDC_POST_LOGOUT_URI: &str = "http://127.0.0.1:8976/logged-out";
/// A dealer and its customer; a confidential client allowed the token exchange (RFC 8693).
pub const DEALER_EMAIL: &str = "dealer@example.com";
pub const CUSTOMER_EMAIL: &str = "customer@example.com";
pub const DEALER_CLIENT_ID: &str = "camgate.dealer.demo";
pub const DEALER_CLIENT_SECRET: &str = "dealer-demo-secret-0123456789";

/// What the demo created, for the printed instructions.
pub struct DemoInfo {
    pub pat: String,
    /// The confidential Angelcam web app (spec 000's authorization-code example).
    pub web_client_id: String,
    pub web_client_secret: String,
}

/// Seeds the demo data if the database has no users; `Ok(None)` if it already had some.
pub async fn seed(core: &Core) -> Result<Option<DemoInfo>, ApiError> {
    if core.store.count_users().await? > 0 {
        return Ok(None);
    }
    // Every password and imported client secret is an argon2id hash (≈ 20 ms of CPU each,
    // eight here): the users' and the clients' are hashed side by side, one per core, and
    // stored in order (ids as if made one by one), so the demo is ready sooner.
    let mut users = core
        .create_users(vec![
            UserInput {
                email: DEMO_EMAIL.into(),
                password: DEMO_PASSWORD.into(),
                first_name: "Keyshawn".into(),
                last_name: "Jacobs".into(),
                phone: "+1608494652".into(),
                is_admin: true,
                email_verified: true,
            },
            // A dealer (same password as the demo user) with one customer who has one camera,
            // and a client that may exchange the dealer's token.
            UserInput {
                email: DEALER_EMAIL.into(),
                password: DEMO_PASSWORD.into(),
                first_name: "Dee".into(),
                last_name: "Dealer".into(),
                ..Default::default()
            },
        ])
        .await?
        .into_iter();
    let (Some(user), Some(dealer)) = (users.next(), users.next()) else {
        return Err(ApiError::Internal);
    };
    core.set_dealer(dealer.id, true).await?;
    let mut clients = vec![
        ClientInput {
            name: "Angelcam quick-start app".into(),
            owner_id: Some(user.id),
            kind: ClientKind::Public,
            redirect_uris: vec![
                "https://yourapp.com/callback".into(),
                "http://127.0.0.1:8000/callback".into(),
            ],
            grants: vec![
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::AuthorizationCode,
            ],
            scopes: None,
            profile: Some("angelcam".into()),
            client_id: Some(ANGELCAM_CLIENT_ID.into()),
            client_secret: None,
            oidc: Default::default(),
            allow_password_without_mfa: false,
        },
        ClientInput {
            name: "CameraManager test app".into(),
            owner_id: Some(user.id),
            kind: ClientKind::Confidential,
            redirect_uris: vec!["https://example.com/".into()],
            grants: vec![
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::AuthorizationCode,
            ],
            scopes: None,
            profile: Some("cameramanager".into()),
            client_id: Some(CM_CLIENT_ID.into()),
            client_secret: Some(CM_CLIENT_SECRET.into()),
            oidc: Default::default(),
            allow_password_without_mfa: false,
        },
        // Spec 000's authorization-code exchange sends client_id + client_secret without
        // PKCE: that is a confidential client.
        ClientInput {
            name: "Angelcam web app".into(),
            owner_id: Some(user.id),
            kind: ClientKind::Confidential,
            redirect_uris: vec![
                "https://yourapp.com/callback".into(),
                "http://127.0.0.1:8000/callback".into(),
            ],
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: None,
            profile: Some("angelcam".into()),
            client_id: None,
            client_secret: None,
            oidc: Default::default(),
            allow_password_without_mfa: false,
        },
        ClientInput {
            name: "CAM2API demo app".into(),
            owner_id: Some(user.id),
            kind: ClientKind::Confidential,
            redirect_uris: Vec::new(),
            grants: vec![GrantType::ClientCredentials],
            scopes: None,
            profile: Some("cam2".into()),
            client_id: Some(CAM2_CLIENT_ID.into()),
            client_secret: Some(CAM2_CLIENT_SECRET.into()),
            oidc: Default::default(),
            allow_password_without_mfa: false,
        },
        ClientInput {
            name: "Demo camera bridge".into(),
            owner_id: Some(user.id),
            kind: ClientKind::Public,
            redirect_uris: Vec::new(),
            grants: vec![GrantType::DeviceCode, GrantType::RefreshToken],
            scopes: None,
            profile: Some("angelcam".into()),
            client_id: Some(DEVICE_CLIENT_ID.into()),
            client_secret: None,
            oidc: Default::default(),
            allow_password_without_mfa: false,
        },
    ];
    for (id, secret, name, subject_type, alg) in [
        (
            OIDC_CLIENT_ID,
            OIDC_CLIENT_SECRET,
            "OpenID Connect demo app",
            SubjectType::Public,
            JwtAlg::Rs256,
        ),
        (
            OIDC_PAIRWISE_CLIENT_ID,
            OIDC_PAIRWISE_CLIENT_SECRET,
            "OpenID Connect demo app (pairwise)",
            SubjectType::Pairwise,
            JwtAlg::Es256,
        ),
    ] {
        clients.push(ClientInput {
            name: name.into(),
            owner_id: Some(user.id),
            kind: ClientKind::Confidential,
            redirect_uris: vec![OIDC_REDIRECT_URI.into()],
            grants: vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            scopes: None,
            profile: Some("angelcam".into()),
            client_id: Some(id.into()),
            client_secret: Some(secret.into()),
            oidc: OidcClient {
                post_logout_redirect_uris: vec![OIDC_POST_LOGOUT_URI.into()],
                subject_type,
                sector_identifier: None,
                id_token_alg: IdTokenAlg(alg),
            },
            allow_password_without_mfa: false,
        });
    }
    clients.push(ClientInput {
        name: "Dealer portal".into(),
        owner_id: Some(dealer.id),
        kind: ClientKind::Confidential,
        redirect_uris: Vec::new(),
        grants: vec![GrantType::Password, GrantType::TokenExchange],
        scopes: None,
        profile: Some("angelcam".into()),
        client_id: Some(DEALER_CLIENT_ID.into()),
        client_secret: Some(DEALER_CLIENT_SECRET.into()),
        oidc: Default::default(),
        allow_password_without_mfa: false,
    });
    let clients = core.register_clients(clients).await?;
    let (customer, _) = core
        .add_customer(
            dealer.id,
            camgate_core::dealers::CustomerInput {
                user: UserInput {
                    email: CUSTOMER_EMAIL.into(),
                    password: DEMO_PASSWORD.into(),
                    first_name: "Cal".into(),
                    last_name: "Customer".into(),
                    ..Default::default()
                },
                level: Some("full".into()),
            },
        )
        .await?;
    let web = clients
        .into_iter()
        .find(|c| c.client.name == "Angelcam web app")
        .ok_or(ApiError::Internal)?;
    core.create_camera(
        customer.id,
        CameraFields::named("Customer porch".to_string()),
    )
    .await?;
    let (_, pat) = core
        .create_pat(user.id, "demo", ScopeSet::READ_WRITE, None)
        .await?;
    let cities = [
        ("Shinjuku-ku", "Tokyo", "JP", 35.6895, 139.6917),
        ("Prague", "Prague", "CZ", 50.0755, 14.4378),
        ("West Lafayette", "IN", "US", 40.4259, -86.9081),
        ("Amsterdam", "NH", "NL", 52.3676, 4.9041),
        ("Lyon", "ARA", "FR", 45.764, 4.8357),
    ];
    for i in 0..20usize {
        let (city, state, country, lat, lng) = cities[i % cities.len()];
        let mut f = CameraFields::named(format!("Demo camera {:02}", i + 1));
        f.codec = [VideoCodec::H264, VideoCodec::H265, VideoCodec::Mjpeg][i % 3];
        f.status = [
            CameraStatus::Online,
            CameraStatus::Offline,
            CameraStatus::Unknown,
        ][i % 3];
        f.streams = vec![Stream {
            format: if f.codec == VideoCodec::Mjpeg {
                "mjpeg".into()
            } else {
                "hls".into()
            },
            url: format!("https://streams.example.com/demo/{}/index.m3u8", i + 1),
        }];
        f.snapshot = Some(Snapshot {
            url: format!("https://snapshots.example.com/demo/{}.jpg", i + 1),
            created_at: core.now(),
        });
        f.city = Some(city.into());
        f.state = Some(state.into());
        f.country = Some(country.into());
        f.lat = Some(lat + (i as f64) * 0.001);
        f.lng = Some(lng - (i as f64) * 0.001);
        f.source = Some(if i % 2 == 0 {
            "Google".into()
        } else {
            "DOT".into()
        });
        f.source_url = Some("www.google.com".into());
        f.camera_type = Some(if i % 4 == 0 {
            "Non_IP".into()
        } else {
            "IP".into()
        });
        f.is_video = Some(i % 3 != 2);
        f.framerate = Some(if i % 3 == 2 { 1.0 } else { 25.0 });
        f.outdoors = Some(i % 2 == 0);
        f.traffic = Some(i % 5 == 0);
        f.inactive = Some(false);
        f.resolution_w = Some(if i % 2 == 0 { 1920 } else { 1280 });
        f.resolution_h = Some(if i % 2 == 0 { 1080 } else { 720 });
        f.is_public = i % 4 == 0;
        core.create_camera(user.id, f).await?;
    }
    Ok(Some(DemoInfo {
        pat,
        web_client_id: web.client.client_id,
        web_client_secret: web.secret.unwrap_or_default(),
    }))
}

/// The ready-to-paste instructions printed after seeding.
pub fn instructions(base: &str, info: &DemoInfo) -> String {
    format!(
        r#"
camgate demo is ready at {base}

  demo user:      {DEMO_EMAIL} / {DEMO_PASSWORD}
  Angelcam app:   client_id {ANGELCAM_CLIENT_ID} (public, password grant)
  Angelcam web:   {web_id} / {web_secret} (confidential, authorization code)
  CameraManager:  {CM_CLIENT_ID} / {CM_CLIENT_SECRET} (HTTP Basic)
  CAM2API app:    {CAM2_CLIENT_ID} / {CAM2_CLIENT_SECRET} (client credentials, JWT)
  device app:     client_id {DEVICE_CLIENT_ID} (public, device authorization grant)
  OpenID Connect: {OIDC_CLIENT_ID} / {OIDC_CLIENT_SECRET} (RS256, public sub)
                  {OIDC_PAIRWISE_CLIENT_ID} / {OIDC_PAIRWISE_CLIENT_SECRET} (ES256, pairwise sub)
                  redirect {OIDC_REDIRECT_URI}, discovery {base}/.well-known/openid-configuration
  dealer:         {DEALER_EMAIL} / {DEMO_PASSWORD}, customer {CUSTOMER_EMAIL} / {DEMO_PASSWORD}
  dealer portal:  {DEALER_CLIENT_ID} / {DEALER_CLIENT_SECRET} (password, token exchange)
  personal token: {pat}
  dashboard:      {base}/dashboard/ (sign in as the demo user)

Try (spec 001, Angelcam quick start):
  curl -X POST {base}/oauth/token/ -d "client_id={ANGELCAM_CLIENT_ID}&grant_type=password&username=user%40example.com&password=secret"
  curl -H "Authorization: Bearer ACCESS_TOKEN" -X GET "{base}/v1/me/"
  curl -H "Authorization: Bearer ACCESS_TOKEN" -X GET "{base}/v1/cameras/?limit=5"
  curl -X POST {base}/oauth/token/ -F grant_type=refresh_token -F client_id={ANGELCAM_CLIENT_ID} -F refresh_token=REFRESH_TOKEN
  curl -H "Authorization: PersonalAccessToken {pat}" -X GET "{base}/v1/me/"

Authorization code (spec 000): open in a browser, sign in, approve, copy `code` from the address bar
  {base}/oauth/authorize/?response_type=code&client_id={web_id}&redirect_uri=https://yourapp.com/callback&scope=user_access&state=CSRF_TOKEN
  curl -X POST {base}/oauth/token/ -F grant_type=authorization_code -F client_id={web_id} -F client_secret={web_secret} -F code=AUTH_CODE -F redirect_uri=https://yourapp.com/callback
CAM2API (spec 002):
  curl -X POST {base}/token.json -d client_id={CAM2_CLIENT_ID} -d client_secret={CAM2_CLIENT_SECRET}
  curl -X GET -H "Authorization: JWT TOKEN" "{base}/cameras.json?country=JP"
  curl -X POST {base}/refresh_token.json -d token="TOKEN"

Device pairing (RFC 8628): ask for codes, open verification_uri_complete in a browser, approve, poll
  curl -X POST {base}/oauth/device_authorization -d client_id={DEVICE_CLIENT_ID}
  curl -X POST {base}/oauth/token -d client_id={DEVICE_CLIENT_ID} -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=DEVICE_CODE

Dealer acting for a customer (RFC 8693 token exchange; CUSTOMER_ID from GET /v1/dealer/customers/):
  curl -X POST {base}/oauth/token -u {DEALER_CLIENT_ID}:{DEALER_CLIENT_SECRET} -d grant_type=password -d username=dealer%40example.com -d password=secret
  curl -H "Authorization: Bearer DEALER_TOKEN" "{base}/v1/dealer/customers/"
  curl -X POST {base}/oauth/token -u {DEALER_CLIENT_ID}:{DEALER_CLIENT_SECRET} -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token=DEALER_TOKEN -d subject_token_type=urn:ietf:params:oauth:token-type:access_token -d requested_subject=CUSTOMER_ID

CameraManager (spec 003):
  curl -X POST -H "Accept: application/json" -u {CM_CLIENT_ID}:{CM_CLIENT_SECRET} "{base}/oauth/token?grant_type=password&scope=write&username=user%40example.com&password=secret"
"#,
        pat = info.pat,
        web_id = info.web_client_id,
        web_secret = info.web_client_secret,
    )
}
