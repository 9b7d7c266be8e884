//! The client credentials grant (RFC 6749 §4.4): a confidential client asks for a token for
//! itself. CAM2API (spec 002) uses it at `POST /token/`; it works for every profile whose
//! client allows the grant (opaque or JWT access tokens, as the profile says).

use crate::error::OAuthError;
use crate::model::{Client, ClientKind, GrantType};
use crate::oauth::{Caller, TokenResponse};
use crate::Core;

impl Core {
    /// RFC 6749 §4.4.2 for an already authenticated client (§4.4.2: "The client MUST
    /// authenticate with the authorization server").
    pub async fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        // §4.4: "The client credentials grant type MUST only be used by confidential clients."
        if client.kind != ClientKind::Confidential {
            return Err(OAuthError::unauthorized_client(
                "A public client cannot use the client_credentials grant.",
            ));
        }
        if !client.allows_grant(GrantType::ClientCredentials) {
            return Err(OAuthError::unauthorized_client(
                "This client may not use the client_credentials grant.",
            ));
        }
        let scope = self.grant_scope(client, scope)?;
        // §4.4.3: "A refresh token SHOULD NOT be included" — issue_new_family issues none for
        // this grant.
        self.issue_new_family(client, None, GrantType::ClientCredentials, scope, caller)
            .await
    }
}
