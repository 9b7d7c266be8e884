//! Token profiles (DESIGN.md §4): the dialects' token behaviour as data, attached to a client.
//! Operators may define more in the config file.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::secret::TokenFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    Opaque,
    Jwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshMode {
    /// Single use: each refresh returns a new refresh token (RFC 9700 §4.14.2).
    Rotate,
    /// The same refresh token is returned and keeps working until revoked.
    Reuse,
    /// CAM2: re-sign the JWT within a window of the original issue time.
    Resign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStyle {
    /// 30 alphanumeric characters (django-oauth-toolkit).
    Alnum30,
    /// `cgat_…` / `cgrt_…` prefixed tokens.
    Prefixed,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(skip)]
    pub name: String,
    pub access: AccessKind,
    pub access_ttl_secs: i64,
    /// `None`: refresh tokens never expire (until revoked).
    #[serde(default)]
    pub refresh_ttl_secs: Option<i64>,
    pub refresh: RefreshMode,
    pub token_type: String,
    #[serde(default = "default_style")]
    pub token_style: TokenStyle,
}

fn default_style() -> TokenStyle {
    TokenStyle::Prefixed
}

impl Profile {
    pub fn access_format(&self) -> TokenFormat {
        match self.token_style {
            TokenStyle::Alnum30 => TokenFormat::Alnum30,
            TokenStyle::Prefixed => TokenFormat::Prefixed("cgat_"),
        }
    }
    pub fn refresh_format(&self) -> TokenFormat {
        match self.token_style {
            TokenStyle::Alnum30 => TokenFormat::Alnum30,
            TokenStyle::Prefixed => TokenFormat::Prefixed("cgrt_"),
        }
    }
}

pub const DEFAULT_PROFILE: &str = "angelcam";

/// The named profiles known to this server: built-ins plus the config file's.
#[derive(Debug, Clone)]
pub struct Profiles(BTreeMap<String, Profile>);

impl Profiles {
    pub fn builtin() -> Self {
        let mut m = BTreeMap::new();
        m.insert(
            "angelcam".to_string(),
            Profile {
                name: "angelcam".into(),
                access: AccessKind::Opaque,
                access_ttl_secs: 36_000,
                refresh_ttl_secs: Some(30 * 86_400),
                refresh: RefreshMode::Rotate,
                token_type: "Bearer".into(),
                token_style: TokenStyle::Alnum30,
            },
        );
        m.insert(
            "cameramanager".to_string(),
            Profile {
                name: "cameramanager".into(),
                access: AccessKind::Opaque,
                access_ttl_secs: 43_199,
                refresh_ttl_secs: None,
                refresh: RefreshMode::Reuse,
                token_type: "bearer".into(),
                token_style: TokenStyle::Prefixed,
            },
        );
        m.insert(
            "cam2".to_string(),
            Profile {
                name: "cam2".into(),
                access: AccessKind::Jwt,
                access_ttl_secs: 3_600,
                refresh_ttl_secs: Some(86_400),
                refresh: RefreshMode::Resign,
                token_type: "JWT".into(),
                token_style: TokenStyle::Prefixed,
            },
        );
        Self(m)
    }

    /// Adds (or overrides) a profile from configuration.
    pub fn insert(&mut self, name: &str, mut p: Profile) -> Result<(), String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("invalid profile name `{name}`"));
        }
        if p.access_ttl_secs <= 0 {
            return Err(format!(
                "profile `{name}`: access_ttl_secs must be positive"
            ));
        }
        if matches!(p.refresh_ttl_secs, Some(t) if t <= 0) {
            return Err(format!(
                "profile `{name}`: refresh_ttl_secs must be positive"
            ));
        }
        // JWT access tokens are refreshed by re-signing (CAM2), opaque ones by refresh tokens.
        if (p.access == AccessKind::Jwt) != (p.refresh == RefreshMode::Resign) {
            return Err(format!(
                "profile `{name}`: access = \"jwt\" goes with refresh = \"resign\", and only it"
            ));
        }
        p.name = name.to_string();
        self.0.insert(name.to_string(), p);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.0.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
