//! Typed identifiers. Every identifier that crosses a module boundary is one of these, parsed
//! once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Path segments the service itself uses; a tenant may never take one as its slug.
const RESERVED_SLUGS: &[&str] = &[
    "admin", "api", "assets", "auth", "docs", "favicon", "health", "healthz", "login", "logout",
    "metrics", "oauth", "openapi", "readyz", "robots", "saml", "sso", "static", "swagger",
    "well-known",
];

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Length outside the allowed range.
    #[error("must be between {min} and {max} characters long")]
    Length {
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// A character other than lowercase ASCII letters, digits and hyphens.
    #[error("may contain only lowercase letters, digits and hyphens")]
    Charset,
    /// Starts or ends with a hyphen.
    #[error("must not start or end with a hyphen")]
    Hyphen,
    /// A name the service uses for its own routes.
    #[error("{0:?} is reserved")]
    Reserved(String),
}

fn check_label(value: &str, min: usize, max: usize) -> Result<(), IdError> {
    if value.len() < min || value.len() > max {
        return Err(IdError::Length { min, max });
    }
    if !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(IdError::Charset);
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(IdError::Hyphen);
    }
    Ok(())
}

/// A tenant's URL name (`acme` in `https://HOST/acme`): 2 to 63 lowercase letters, digits and
/// hyphens, never one of the service's own route names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses and checks a slug.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check_label(value, 2, 63)?;
        if RESERVED_SLUGS.contains(&value) {
            return Err(IdError::Reserved(value.to_owned()));
        }
        Ok(TenantSlug(value.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A connection's id within its tenant: 1 to 63 lowercase letters, digits and hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionId(String);

impl ConnectionId {
    /// Parses and checks a connection id.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        check_label(value, 1, 63)?;
        Ok(ConnectionId(value.to_owned()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_conversions {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                $ty::parse(&value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_conversions!(TenantSlug);
string_conversions!(ConnectionId);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(pub Uuid);

        impl $ty {
            /// A fresh random id.
            pub fn new() -> Self {
                $ty(Uuid::new_v4())
            }

            /// Parses the hyphenated text form.
            pub fn parse(value: &str) -> Option<Self> {
                Uuid::parse_str(value).ok().map($ty)
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty(Uuid::nil())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A Gatehouse user, unique across tenants.
    UserId
);
uuid_id!(
    /// One login attempt, quoted to support on error pages.
    AttemptId
);

/// Who caused an event: an admin credential, a person, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    /// An admin API credential, named by its id (never its token).
    pub fn admin(credential_id: &str) -> Self {
        Actor(format!("admin:{credential_id}"))
    }

    /// The person behind a login attempt.
    pub fn person(attempt: AttemptId) -> Self {
        Actor(format!("attempt:{attempt}"))
    }

    /// Gatehouse itself.
    pub fn system() -> Self {
        Actor("system".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_url_rules() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-2").is_ok());
        assert_eq!(TenantSlug::parse("Acme"), Err(IdError::Charset));
        assert_eq!(TenantSlug::parse("-acme"), Err(IdError::Hyphen));
        assert_eq!(TenantSlug::parse("a"), Err(IdError::Length { min: 2, max: 63 }));
        assert_eq!(TenantSlug::parse("ac me"), Err(IdError::Charset));
        assert_eq!(TenantSlug::parse("acmé"), Err(IdError::Charset));
        assert_eq!(TenantSlug::parse(&"a".repeat(64)), Err(IdError::Length { min: 2, max: 63 }));
    }

    #[test]
    fn service_route_names_are_reserved() {
        for name in ["api", "healthz", "readyz", "metrics", "static"] {
            assert_eq!(TenantSlug::parse(name), Err(IdError::Reserved(name.into())));
        }
    }

    #[test]
    fn slugs_deserialize_through_the_checks() {
        assert!(serde_json::from_str::<TenantSlug>("\"API\"").is_err());
        assert!(serde_json::from_str::<TenantSlug>("\"acme\"").is_ok());
    }
}
