//! OAuth client registration and redirect-URI rules.

use crate::error::ApiError;
use crate::model::{
    AuditKind, Client, ClientKind, GrantType, NewClient, OidcClient, SecretHash, SubjectType,
    UserId,
};
use crate::password;
use crate::scope::ScopeSet;
use crate::secret;
use crate::Core;

#[derive(Debug, Clone)]
pub struct ClientInput {
    pub name: String,
    pub owner_id: Option<UserId>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// Empty: every grant the kind of client may use.
    pub grants: Vec<GrantType>,
    /// `None`: `read write`.
    pub scopes: Option<ScopeSet>,
    pub profile: Option<String>,
    /// Imported id (otherwise 40 random alphanumerics).
    pub client_id: Option<String>,
    /// Imported secret (stored with argon2id: it may be human-chosen).
    pub client_secret: Option<String>,
    /// OpenID Connect settings (post-logout redirect URIs, subject type, id_token algorithm).
    pub oidc: OidcClient,
    /// The password grant works for users with a second factor (legacy devices; audited).
    pub allow_password_without_mfa: bool,
}

/// Checks a client's OpenID Connect settings: post-logout redirect URIs by the redirect URI
/// rules (RP-Initiated Logout 1.0 §3 compares them exactly, so they are stored as given), a
/// sector for pairwise identifiers (OIDC Core §8.1: the one host of the redirect URIs, or a
/// `sector_identifier`).
pub fn validate_oidc(oidc: &OidcClient, redirect_uris: &[String]) -> Result<(), ApiError> {
    if oidc.post_logout_redirect_uris.len() > 20 {
        return Err(ApiError::invalid(
            "post_logout_redirect_uri",
            "At most 20 post-logout redirect URIs.",
        ));
    }
    for uri in &oidc.post_logout_redirect_uris {
        validate_redirect_uri(uri).map_err(|m| ApiError::invalid("post_logout_redirect_uri", m))?;
    }
    if let Some(s) = &oidc.sector_identifier {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return Err(ApiError::invalid(
                "sector_identifier",
                "A sector identifier is a host name (letters, digits, '.', '-').",
            ));
        }
    }
    if oidc.subject_type == SubjectType::Pairwise && oidc.sector_identifier.is_none() {
        let probe = Client {
            pk: 0,
            client_id: String::new(),
            secret: SecretHash::None,
            name: String::new(),
            owner_id: None,
            kind: ClientKind::Public,
            redirect_uris: redirect_uris.to_vec(),
            grants: Vec::new(),
            scopes: ScopeSet::NONE,
            profile: String::new(),
            created_at: 0,
            oidc: oidc.clone(),
            allow_password_without_mfa: false,
        };
        if crate::oidc::sector_of(&probe).is_none() {
            return Err(ApiError::invalid(
                "sector_identifier",
                "Pairwise subject identifiers need one sector: redirect URIs on one host, or a \
                 sector identifier (OpenID Connect Core §8.1).",
            ));
        }
    }
    Ok(())
}

/// The registered client and, if one was generated, its secret (shown once).
#[derive(Debug)]
pub struct RegisteredClient {
    pub client: Client,
    pub secret: Option<String>,
}

/// Checks a redirect URI at registration: absolute `https://`, or `http://` on a loopback
/// host, no fragment (RFC 6749 §3.1.2, RFC 9700 §4.1.1 / §2.1), no userinfo.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > 2000 {
        return Err("redirect URI is too long".into());
    }
    let parsed = url::Url::parse(uri).map_err(|_| format!("`{uri}` is not an absolute URI"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(format!("`{uri}` must not contain a fragment"));
    }
    // `https://@host/` has an empty userinfo the parser drops: look at the raw authority too.
    let authority = uri
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if !parsed.username().is_empty() || parsed.password().is_some() || authority.contains('@') {
        return Err(format!("`{uri}` must not contain userinfo"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err(format!(
                "`{uri}`: plain http is allowed only on a loopback host"
            )),
        },
        _ => Err(format!(
            "`{uri}` must use https:// (or http:// on loopback)"
        )),
    }
}

fn validate_client_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-~".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "client_id",
            "A client id is 1-100 characters of letters, digits, '.', '_', '-', '~'.",
        ))
    }
}

impl Core {
    /// Replaces a client's OpenID Connect settings (operator command; checked as at
    /// registration).
    pub async fn set_client_oidc(&self, client: &Client, oidc: OidcClient) -> Result<(), ApiError> {
        validate_oidc(&oidc, &client.redirect_uris)?;
        if !self.store.set_client_oidc(client.pk, &oidc).await? {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::ClientUpdated,
            None,
            Some(&client.client_id),
            None,
            "openid connect settings",
        )
        .await;
        Ok(())
    }

    pub async fn register_client(&self, input: ClientInput) -> Result<RegisteredClient, ApiError> {
        let prepared = self.prepare_client(input).await?;
        self.insert_client(prepared).await
    }

    /// Registers several clients, hashing their imported secrets side by side (argon2id, as
    /// many at once as the process keeps working memory for: one per core) and storing them in
    /// the given order, so their rows and audit entries keep that order. An input refused by
    /// validation stores none of them; a conflict while storing keeps those stored before it.
    pub async fn register_clients(
        &self,
        inputs: Vec<ClientInput>,
    ) -> Result<Vec<RegisteredClient>, ApiError> {
        crate::password::hash_then_store(
            inputs,
            |i| self.prepare_client(i),
            |p| self.insert_client(p),
        )
        .await
    }

    /// Validates a new client and hashes an imported secret.
    async fn prepare_client(&self, input: ClientInput) -> Result<PreparedClient, ApiError> {
        let name = input.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(ApiError::invalid(
                "name",
                "The name must be 1-255 characters.",
            ));
        }
        for uri in &input.redirect_uris {
            validate_redirect_uri(uri).map_err(|m| ApiError::invalid("redirect_uri", m))?;
        }
        validate_oidc(&input.oidc, &input.redirect_uris)?;
        let profile = input
            .profile
            .unwrap_or_else(|| crate::profile::DEFAULT_PROFILE.into());
        if !self.profiles.contains(&profile) {
            return Err(ApiError::invalid(
                "profile",
                format!("Unknown profile `{profile}`."),
            ));
        }
        // Without explicit grants: every grant but the device grant (opt-in: a client that asks
        // for device codes is a deliberate deployment choice), and client credentials only for
        // confidential clients.
        let grants = if input.grants.is_empty() {
            GrantType::ALL
                .into_iter()
                .filter(|g| *g != GrantType::DeviceCode)
                // Acting for a dealer's customers is granted explicitly, never by default.
                .filter(|g| *g != GrantType::TokenExchange)
                .filter(|g| {
                    input.kind == ClientKind::Confidential || *g != GrantType::ClientCredentials
                })
                .collect()
        } else {
            let mut g = input.grants.clone();
            g.dedup();
            g
        };
        if input.kind == ClientKind::Public && grants.contains(&GrantType::ClientCredentials) {
            return Err(ApiError::invalid(
                "grant",
                "A public client cannot use client_credentials (RFC 6749 §4.4).",
            ));
        }
        let client_id = match input.client_id {
            Some(id) => {
                validate_client_id(&id)?;
                id
            }
            None => secret::generate_client_id(),
        };
        let (stored, shown) = match (input.kind, input.client_secret) {
            (ClientKind::Public, Some(_)) => {
                return Err(ApiError::invalid(
                    "client_secret",
                    "A public client has no secret.",
                ))
            }
            (ClientKind::Public, None) => (SecretHash::None, None),
            (ClientKind::Confidential, Some(imported)) => {
                if imported.is_empty() {
                    return Err(ApiError::invalid("client_secret", "The secret is empty."));
                }
                let params = self.hasher.params();
                let phc =
                    tokio::task::spawn_blocking(move || password::hash_blocking(params, &imported))
                        .await
                        .map_err(|_| ApiError::Internal)?
                        .map_err(|_| ApiError::Internal)?;
                (SecretHash::Argon2(phc), None)
            }
            (ClientKind::Confidential, None) => {
                let s = secret::generate_client_secret();
                (SecretHash::Sha256(secret::digest(&s)), Some(s))
            }
        };
        Ok(PreparedClient {
            new: NewClient {
                client_id,
                secret: stored,
                name,
                owner_id: input.owner_id,
                kind: input.kind,
                redirect_uris: input.redirect_uris,
                grants,
                // Registration limits camera permissions; identity scopes go with the code
                // flow to any client (core::scope).
                scopes: input.scopes.unwrap_or(ScopeSet::READ_WRITE).resource(),
                profile,
                created_at: self.now(),
                oidc: input.oidc,
                allow_password_without_mfa: input.allow_password_without_mfa,
            },
            shown,
        })
    }

    /// Stores a prepared client and audits it.
    async fn insert_client(&self, p: PreparedClient) -> Result<RegisteredClient, ApiError> {
        let owner_id = p.new.owner_id;
        let client = self
            .store
            .create_client(&p.new)
            .await
            .map_err(|e| match e {
                crate::error::StoreError::Conflict(_) => {
                    ApiError::Conflict("A client with this id already exists.".into())
                }
                other => other.into(),
            })?;
        self.audit(
            AuditKind::ClientCreated,
            owner_id,
            Some(&client.client_id),
            None,
            "",
        )
        .await;
        Ok(RegisteredClient {
            client,
            secret: p.shown,
        })
    }
}

/// A validated client with its secret hashed, not stored yet.
struct PreparedClient {
    new: NewClient,
    /// The generated secret, shown once.
    shown: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::validate_redirect_uri as v;

    #[test]
    fn redirect_rules() {
        assert!(v("https://yourapp.com/callback").is_ok());
        assert!(v("http://127.0.0.1:9000/cb").is_ok());
        assert!(v("http://localhost/cb").is_ok());
        assert!(v("http://example.com/cb").is_err());
        assert!(v("https://a.com/cb#frag").is_err());
        assert!(v("https://user@a.com/cb").is_err());
        assert!(v("https://@a.com/cb").is_err());
        assert!(v("https://a.com/cb?u=a@b").is_ok());
        assert!(v("/relative").is_err());
        assert!(v("javascript:alert(1)").is_err());
    }
}
