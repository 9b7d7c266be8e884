//! Dealers and their customers, and a dealer acting for a customer through OAuth 2.0 Token
//! Exchange (RFC 8693) in its impersonation form: the dealer presents its own access token as
//! the `subject_token` and names the customer in `requested_subject` (as Keycloak does); the
//! answer is a short-lived access token of the customer's that carries `act: {"sub": dealer}`
//! (RFC 8693 §4.1).
//!
//! The link between dealer and customer is checked on every use of such a token (not only at
//! the exchange), so a customer lowering or revoking the dealer's access, the dealer losing
//! its dealer mark or being disabled, takes effect on the next request on every node.

use crate::error::{ApiError, OAuthError, OAuthErrorCode, StoreError};
use crate::model::{
    AuditKind, Client, DealerLevel, DealerLink, GrantType, NewAccessToken, NewFamily, User, UserId,
};
use crate::oauth::{Caller, Params, TokenResponse};
use crate::principal::{CredentialKind, Principal};
use crate::profile::AccessKind;
use crate::resource::Scheme;
use crate::scope::{Need, ScopeSet};
use crate::users::UserInput;
use crate::{secret, Core};

/// RFC 8693 §3: the token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A dealer's token for a customer lives at most this long (and never past the dealer's own
/// token); it cannot be refreshed.
pub const ACT_TOKEN_TTL_SECS: i64 = 600;

/// What a dealer's token for a customer may do at `level`: `full` keeps the camera
/// permissions asked for, `limited` reads only (no camera writes, no account changes).
pub fn cap_scope(scope: ScopeSet, level: DealerLevel) -> ScopeSet {
    match level {
        DealerLevel::Full => scope.resource(),
        DealerLevel::Limited if scope.allows(Need::Read) => ScopeSet::READ,
        DealerLevel::Limited => ScopeSet::NONE,
    }
}

/// A customer account as a dealer creates it.
#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    pub user: UserInput,
    pub level: Option<String>,
}

fn invalid_target(d: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidTarget, d)
}

impl Core {
    /// Marks or unmarks a dealer (`camgate user add|set --dealer`).
    pub async fn set_dealer(&self, user: UserId, dealer: bool) -> Result<(), ApiError> {
        if !self.store.set_dealer(user, dealer).await? {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::DealerSet,
            Some(user),
            None,
            None,
            if dealer { "dealer: yes" } else { "dealer: no" },
        )
        .await;
        Ok(())
    }

    /// The dealer calling `p`: a user token (not one obtained by exchange) of a dealer who,
    /// when `require_mfa_for_dealers` is set, has a second factor.
    async fn dealer_of_principal<'a>(&self, p: &'a Principal) -> Result<&'a User, ApiError> {
        let u = p.user()?;
        if p.actor.is_some() || !u.is_dealer {
            return Err(ApiError::Forbidden(
                "Only a dealer's own token may do this.".into(),
            ));
        }
        self.dealer_policy(u).await?;
        Ok(u)
    }

    /// `require_mfa_for_dealers`: a dealer without a second factor may not manage customers
    /// or act for them (their password alone would open every customer's account).
    async fn dealer_policy(&self, dealer: &User) -> Result<(), ApiError> {
        if self.settings.mfa.require_for_dealers && !self.has_second_factor(dealer.id).await? {
            return Err(ApiError::Forbidden(
                "Dealers need two-factor sign-in: turn it on under Account first.".into(),
            ));
        }
        Ok(())
    }

    /// `POST /v1/dealer/customers/`: a dealer creates a customer account, linked to it.
    pub async fn create_customer(
        &self,
        p: &Principal,
        input: CustomerInput,
    ) -> Result<(User, DealerLink), ApiError> {
        p.require(Need::Write)?;
        let dealer = self.dealer_of_principal(p).await?.id;
        let (user, link) = self.add_customer(dealer, input).await?;
        self.audit_act(
            p,
            AuditKind::CustomerCreated,
            format!(
                "customer {} created by dealer {dealer} ({})",
                user.id,
                link.level.as_str()
            ),
        )
        .await;
        Ok((user, link))
    }

    /// Creates a customer account of `dealer` (a dealer: checked by the caller).
    pub async fn add_customer(
        &self,
        dealer: UserId,
        input: CustomerInput,
    ) -> Result<(User, DealerLink), ApiError> {
        let level = match input.level.as_deref() {
            None => DealerLevel::Full,
            Some(s) => DealerLevel::parse(s)
                .ok_or_else(|| ApiError::invalid("level", "`level` must be full or limited."))?,
        };
        let mut u = input.user;
        u.is_admin = false;
        let new = self.prepare_user(u).await?;
        let user = match self
            .store
            .create_customer(dealer, &new, level, self.now())
            .await
        {
            Ok(u) => u,
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::invalid(
                    "email",
                    "An account with this email address already exists.",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let link = self
            .store
            .dealer_of(user.id)
            .await?
            .map(|(l, _)| l)
            .ok_or(ApiError::Internal)?;
        Ok((user, link))
    }

    /// `GET /v1/dealer/customers/`: the dealer's customers with their links.
    pub async fn dealer_customers(
        &self,
        p: &Principal,
    ) -> Result<Vec<(User, DealerLink)>, ApiError> {
        p.require(Need::Read)?;
        let dealer = self.dealer_of_principal(p).await?.id;
        Ok(self.store.customers(dealer).await?)
    }

    /// The customers of a dealer (the dashboard).
    pub async fn customers_of(&self, dealer: &User) -> Result<Vec<(User, DealerLink)>, ApiError> {
        if !dealer.is_dealer {
            return Ok(Vec::new());
        }
        self.dealer_policy(dealer).await?;
        Ok(self.store.customers(dealer.id).await?)
    }

    /// A customer's dealer and the link (the dashboard's "Managed by").
    pub async fn managed_by(
        &self,
        customer: UserId,
    ) -> Result<Option<(DealerLink, User)>, ApiError> {
        Ok(self.store.dealer_of(customer).await?)
    }

    /// The customer lowers the dealer's level (`Some(limited)`) or revokes its access (`None`).
    /// Raising it back is not the customer's to do alone: a dealer's level only goes down.
    pub async fn change_dealer_access(
        &self,
        customer: UserId,
        level: Option<DealerLevel>,
    ) -> Result<(), ApiError> {
        let (link, _) = self
            .store
            .dealer_of(customer)
            .await?
            .ok_or(ApiError::NotFound)?;
        if link.revoked_at.is_some() {
            return Err(ApiError::invalid(
                "level",
                "The dealer's access is already revoked.",
            ));
        }
        if let Some(l) = level {
            if l > link.level {
                return Err(ApiError::invalid(
                    "level",
                    "The dealer's access can only be lowered or revoked.",
                ));
            }
        }
        if !self
            .store
            .set_dealer_access(customer, level, self.now())
            .await?
        {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::DealerAccessChanged,
            Some(customer),
            None,
            None,
            format!(
                "dealer {} access {}",
                link.dealer_id,
                level.map_or("revoked", DealerLevel::as_str)
            ),
        )
        .await;
        Ok(())
    }

    /// The level at which `dealer` may act for `customer` now; `None` if it may not (no link,
    /// revoked, or the dealer is no longer a dealer or is disabled).
    pub(crate) async fn act_level(
        &self,
        dealer: UserId,
        customer: UserId,
    ) -> Result<Option<DealerLevel>, StoreError> {
        Ok(match self.store.dealer_of(customer).await? {
            Some((link, d))
                if link.dealer_id == dealer
                    && link.revoked_at.is_none()
                    && d.is_dealer
                    && !d.disabled =>
            {
                Some(link.level)
            }
            _ => None,
        })
    }

    /// Resource authentication of a token obtained by exchange: the dealer must still be
    /// allowed to act; the scopes are capped at the level the customer allows now.
    pub(crate) async fn check_actor(&self, p: &mut Principal) -> Result<(), ApiError> {
        let (Some(actor), Some(u)) = (p.actor, p.user.as_ref()) else {
            return Ok(());
        };
        match self.act_level(actor, u.id).await? {
            Some(level) => {
                p.scopes = cap_scope(p.scopes, level);
                Ok(())
            }
            None => Err(ApiError::Unauthenticated(
                "The dealer's access to this account has ended.".into(),
            )),
        }
    }

    /// An audit row for something `p` did, naming the dealer when one acts for the user.
    pub async fn audit_act(&self, p: &Principal, kind: AuditKind, detail: impl Into<String>) {
        let mut detail = detail.into();
        if let Some(d) = p.actor {
            detail.push_str(&format!(" (by dealer {d})"));
        }
        self.audit(
            kind,
            p.user.as_ref().map(|u| u.id),
            p.client.as_ref().map(|c| c.client_id.as_str()),
            None,
            detail,
        )
        .await;
    }

    /// A write made with a dealer's token for a customer: audited with both identities.
    pub async fn audit_acted_write(
        &self,
        p: &Principal,
        method: &str,
        path: &str,
        ip: Option<&str>,
    ) {
        let (Some(dealer), Some(u)) = (p.actor, p.user.as_ref()) else {
            return;
        };
        let path: String = path.chars().take(200).collect();
        self.audit(
            AuditKind::ActedFor,
            Some(u.id),
            p.client.as_ref().map(|c| c.client_id.as_str()),
            ip,
            format!(
                "dealer {dealer} acting for customer {}: {method} {path}",
                u.id
            ),
        )
        .await;
    }

    /// RFC 8693 §2.1 at the token endpoint (the client is authenticated and allowed the grant).
    pub(crate) async fn token_exchange(
        &self,
        client: &Client,
        params: &Params,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let subject_token = params.require("subject_token")?;
        let subject_type = params.require("subject_token_type")?;
        if subject_type != ACCESS_TOKEN_TYPE {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE}."
            )));
        }
        if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token is not supported: the subject token's holder is the one acting.",
            ));
        }
        if let Some(t) = params.get("requested_token_type") {
            if t != ACCESS_TOKEN_TYPE {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type must be {ACCESS_TOKEN_TYPE}."
                )));
            }
        }
        let requested = params.get("requested_subject").ok_or_else(|| {
            OAuthError::invalid_request(
                "requested_subject (the id of the customer to act for) is required.",
            )
        })?;
        // §2.2.2: an invalid subject token is `invalid_request`.
        let subject = match self.authenticate(Scheme::Bearer, subject_token).await {
            Ok(p) => p,
            Err(ApiError::Unauthenticated(_)) => {
                return Err(OAuthError::invalid_request(
                    "The subject_token is invalid, expired or revoked.",
                ))
            }
            Err(ApiError::Unavailable { retry_after }) => {
                return Err(OAuthError::unavailable(retry_after))
            }
            Err(_) => return Err(OAuthError::server_error()),
        };
        if subject.actor.is_some() || subject.camera.is_some() {
            return Err(OAuthError::invalid_request(
                "The subject_token must be the dealer's own access token.",
            ));
        }
        let subject_exp = match subject.credential {
            CredentialKind::Access { expires_at, .. } | CredentialKind::Jwt { expires_at, .. } => {
                expires_at
            }
            CredentialKind::Pat { .. } | CredentialKind::Session => {
                return Err(OAuthError::invalid_request(
                    "The subject_token must be an OAuth access token.",
                ))
            }
        };
        let Some(dealer) = subject.user.as_ref() else {
            return Err(OAuthError::invalid_request(
                "The subject_token must be a user's access token.",
            ));
        };
        let not_customer =
            || invalid_target("The requested_subject is not a customer this dealer may act for.");
        if !dealer.is_dealer {
            return Err(invalid_target("Only a dealer may act for another account."));
        }
        if self.dealer_policy(dealer).await.is_err() {
            return Err(invalid_target(
                "Dealers need two-factor sign-in to act for customers (require_mfa_for_dealers).",
            ));
        }
        let customer: UserId = requested.trim().parse().map_err(|_| not_customer())?;
        let level = self
            .act_level(dealer.id, customer)
            .await?
            .ok_or_else(not_customer)?;
        let customer_user = self
            .store
            .user_by_id(customer)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(not_customer)?;
        // At most what the dealer's token carries, the level allows and the client may have.
        let base = subject.scopes.resource();
        let scope = match params.get("scope") {
            None => base,
            Some(s) => {
                let set = ScopeSet::parse_requested(s)?;
                if set.has_identity() || !base.covers(&set) {
                    return Err(OAuthError::invalid_scope(
                        "The requested scope exceeds the subject token's scope.",
                    ));
                }
                set
            }
        };
        let scope = cap_scope(scope, level);
        if scope.is_empty() || !client.scopes.covers(&scope) {
            return Err(OAuthError::invalid_scope(
                "No scope this client may be granted is left for the customer.",
            ));
        }
        let profile = self.profile_of(client)?.clone();
        let now = self.now();
        let ttl = profile
            .access_ttl_secs
            .min(ACT_TOKEN_TTL_SECS)
            .min(subject_exp - now)
            .max(1);
        let detail = format!(
            "dealer {} ({}) acting for customer {} ({}), level {}",
            dealer.id,
            dealer.email,
            customer_user.id,
            customer_user.email,
            level.as_str()
        );
        let exchanged = self.audit_event(
            AuditKind::TokenExchanged,
            Some(customer),
            Some(&client.client_id),
            caller.ip.as_deref(),
            detail,
        );
        let access_token = if profile.access == AccessKind::Jwt {
            let cref = crate::model::ClientRef {
                pk: client.pk,
                client_id: client.client_id.clone(),
                owner_id: client.owner_id,
                profile: client.profile.clone(),
            };
            let t = self
                .sign_act_token(&cref, customer, dealer.id, scope, ttl)
                .await?;
            crate::store::write_audits(&*self.store, &[exchanged]).await;
            t
        } else {
            let access = secret::generate(profile.access_format());
            let family = NewFamily {
                user_id: Some(customer),
                client_pk: client.pk,
                grant_type: GrantType::TokenExchange,
                created_at: now,
                authn: None,
                actor_id: Some(dealer.id),
            };
            let new_access = NewAccessToken {
                hash: secret::digest(&access),
                scope,
                created_at: now,
                expires_at: now + ttl,
            };
            self.store
                .create_family_audited(&family, &new_access, None, &[exchanged])
                .await?;
            access
        };
        crate::metrics::token_issued(GrantType::TokenExchange.as_str(), &client.profile);
        Ok(TokenResponse {
            access_token,
            token_type: profile.token_type.clone(),
            expires_in: ttl,
            refresh_token: None,
            scope: scope.to_scope_string(),
            id_token: None,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
        })
    }
}
