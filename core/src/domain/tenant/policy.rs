//! A tenant's login policy: which standard (non-SSO) methods its sign-in page offers, whether
//! guests may sign in at all, and whether members must use SSO.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A standard login method, configured once for the deployment and switched on per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardMethod {
    /// A 6-digit one-time code and a one-click link sent by email.
    EmailCode,
    /// Facebook, through the OAuth 2.0 plugin's `facebook` preset, when the deployment has a
    /// Facebook client.
    Facebook,
    /// Google, through the OIDC plugin and Google's discovery document, when the deployment has
    /// a Google client.
    Google,
}

impl StandardMethod {
    /// Every method, in wire order.
    pub const ALL: [StandardMethod; 3] = [
        StandardMethod::EmailCode,
        StandardMethod::Facebook,
        StandardMethod::Google,
    ];

    /// The wire name (`email_code`).
    pub fn as_str(self) -> &'static str {
        match self {
            StandardMethod::EmailCode => "email_code",
            StandardMethod::Facebook => "facebook",
            StandardMethod::Google => "google",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        StandardMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// What a tenant allows besides its SSO connections.
///
/// The default (a tenant that never set a policy) offers no standard method, so standard
/// login stays off until an administrator switches a method on; guests are allowed and members
/// are held to SSO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginPolicy {
    /// Standard methods the tenant's sign-in page offers.
    pub standard_methods: BTreeSet<StandardMethod>,
    /// Whether people outside the tenant's SSO domains (guests) may sign in at all.
    pub guests_allowed: bool,
    /// Whether an email in one of the SSO connections' allowed domains is refused standard
    /// login and sent to SSO instead.
    pub enforce_sso: bool,
    /// Whether a sign-in by a new method (say Google after an email code) with the same
    /// verified email joins the account that first proved that email in this tenant. Off: each
    /// method's identity gets its own account. Policies recorded before this field existed
    /// read as off.
    #[serde(default)]
    pub link_verified_email: bool,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            standard_methods: BTreeSet::new(),
            guests_allowed: true,
            enforce_sso: true,
            link_verified_email: false,
        }
    }
}

impl LoginPolicy {
    /// True when the tenant offers `method`.
    pub fn allows(&self, method: StandardMethod) -> bool {
        self.standard_methods.contains(&method)
    }
}
