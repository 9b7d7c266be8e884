//! Scopes. camgate has two base scopes, `read` and `write`; `write` implies `read` when
//! authorizing, but a grant remembers what was asked for, so `scope=write` is answered
//! `"scope": "write"` (spec 003) while `user_access` is answered `"read write"` (spec 000).
//! Aliases come from the dialects: `user_access` = read write, `camera_access` = read,
//! `camera_manage` / `camera_create` / `camera_delete` = write.
//!
//! OpenID Connect adds identity scopes (OIDC Core §3.1.2.1, §5.4): `openid` (an id_token and
//! userinfo), `profile`, `email`, `phone` (userinfo claims). They grant no camera permission;
//! only the authorization-code grant may carry them (a client's registered scopes limit the
//! resource scopes, [`ScopeSet::resource`]).

use crate::error::OAuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ScopeSet {
    pub read: bool,
    pub write: bool,
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
    pub phone: bool,
}

/// A permission checked at a resource route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

impl Need {
    pub fn name(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Write => "write",
        }
    }
}

/// Maximum length of a scope parameter we will look at (RFC 6749 does not bound it; we do).
pub const MAX_SCOPE_LEN: usize = 1024;

impl ScopeSet {
    pub const NONE: ScopeSet = ScopeSet {
        read: false,
        write: false,
        openid: false,
        profile: false,
        email: false,
        phone: false,
    };
    pub const READ_WRITE: ScopeSet = ScopeSet {
        read: true,
        write: true,
        ..Self::NONE
    };
    pub const READ: ScopeSet = ScopeSet {
        read: true,
        write: false,
        ..Self::NONE
    };
    pub const WRITE: ScopeSet = ScopeSet {
        read: false,
        write: true,
        ..Self::NONE
    };

    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }

    /// The camera permissions alone (what a client's registration limits).
    pub fn resource(&self) -> ScopeSet {
        ScopeSet {
            read: self.read,
            write: self.write,
            ..Self::NONE
        }
    }

    /// Whether any identity scope (`openid`, `profile`, `email`, `phone`) is in the set.
    pub fn has_identity(&self) -> bool {
        self.openid || self.profile || self.email || self.phone
    }

    /// Parses a space-delimited scope string (RFC 6749 §3.3), expanding aliases.
    /// Unknown names are an error naming the first unknown scope.
    pub fn parse(s: &str) -> Result<ScopeSet, String> {
        if s.len() > MAX_SCOPE_LEN {
            return Err("scope is too long".into());
        }
        let mut set = ScopeSet::default();
        for name in s.split(' ').filter(|n| !n.is_empty()) {
            match name {
                "read" | "camera_access" => set.read = true,
                "write" | "camera_manage" | "camera_create" | "camera_delete" => set.write = true,
                "user_access" => {
                    set.read = true;
                    set.write = true;
                }
                "openid" => set.openid = true,
                "profile" => set.profile = true,
                "email" => set.email = true,
                "phone" => set.phone = true,
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(format!("unknown scope `{shown}`"));
                }
            }
        }
        Ok(set)
    }

    /// Parses a scope parameter as the token endpoint does: errors are `invalid_scope`.
    pub fn parse_requested(s: &str) -> Result<ScopeSet, OAuthError> {
        let set = Self::parse(s).map_err(OAuthError::invalid_scope)?;
        if set.is_empty() {
            return Err(OAuthError::invalid_scope("scope is empty"));
        }
        Ok(set)
    }

    /// Effective permissions: `write` implies `read`.
    pub fn allows(&self, need: Need) -> bool {
        match need {
            Need::Read => self.read || self.write,
            Need::Write => self.write,
        }
    }

    /// True when every permission of `other` is also granted by `self` (with implication).
    pub fn covers(&self, other: &ScopeSet) -> bool {
        (!other.read || self.allows(Need::Read))
            && (!other.write || self.allows(Need::Write))
            && (!other.openid || self.openid)
            && (!other.profile || self.profile)
            && (!other.email || self.email)
            && (!other.phone || self.phone)
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet {
            read: self.read || other.read,
            write: self.write || other.write,
            openid: self.openid || other.openid,
            profile: self.profile || other.profile,
            email: self.email || other.email,
            phone: self.phone || other.phone,
        }
    }

    /// Canonical wire form: the identity scopes, then `read`, `write` — e.g. `read write`,
    /// `openid email read`.
    pub fn to_scope_string(&self) -> String {
        let names = [
            (self.openid, "openid"),
            (self.profile, "profile"),
            (self.email, "email"),
            (self.phone, "phone"),
            (self.read, "read"),
            (self.write, "write"),
        ];
        let mut out = String::new();
        for (on, name) in names {
            if on {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(name);
            }
        }
        out
    }
}

impl std::fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_scope_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_expand() {
        assert_eq!(
            ScopeSet::parse("user_access").unwrap(),
            ScopeSet::READ_WRITE
        );
        assert_eq!(ScopeSet::parse("camera_access").unwrap(), ScopeSet::READ);
        assert_eq!(ScopeSet::parse("camera_manage").unwrap(), ScopeSet::WRITE);
        assert_eq!(ScopeSet::parse("write").unwrap().to_scope_string(), "write");
        assert_eq!(
            ScopeSet::parse("write read").unwrap().to_scope_string(),
            "read write"
        );
        assert!(ScopeSet::parse("admin").unwrap_err().contains("admin"));
    }

    #[test]
    fn identity_scopes_round_trip_and_grant_no_permission() {
        let s = ScopeSet::parse("read openid email").unwrap();
        assert!(s.openid && s.email && !s.profile && !s.phone);
        assert_eq!(s.to_scope_string(), "openid email read");
        assert_eq!(ScopeSet::parse(&s.to_scope_string()).unwrap(), s);
        assert_eq!(s.resource(), ScopeSet::READ);
        let only = ScopeSet::parse_requested("openid").unwrap();
        assert!(!only.allows(Need::Read) && only.has_identity());
        // A client registered for read write does not cover openid by its registration.
        assert!(!ScopeSet::READ_WRITE.covers(&only));
        assert!(ScopeSet::READ_WRITE.covers(&only.resource()));
        assert!(s.covers(&ScopeSet::parse("openid").unwrap()));
        assert!(!s.covers(&ScopeSet::parse("openid profile").unwrap()));
    }

    #[test]
    fn write_implies_read() {
        let w = ScopeSet::WRITE;
        assert!(w.allows(Need::Read));
        assert!(w.covers(&ScopeSet::READ_WRITE));
        assert!(!ScopeSet::READ.covers(&ScopeSet::WRITE));
    }
}
