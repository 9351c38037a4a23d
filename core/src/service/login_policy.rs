//! A tenant's login policy, as administrators read and replace it.

use std::collections::BTreeSet;

use super::{AdminError, Gatehouse};
use crate::domain::tenant::{LoginPolicy, StandardMethod, Tenant, TenantCommand, TenantError};
use crate::ids::Actor;
use crate::store::{CommandError, Metadata};

/// A login policy as sent by an administrator, before it is checked.
#[derive(Clone, Debug)]
pub struct LoginPolicyInput {
    /// Standard method names (`email_code`, `google`, `facebook`).
    pub standard_methods: Vec<String>,
    /// Whether guests (addresses outside the SSO domains) may sign in.
    pub guests_allowed: bool,
    /// Whether addresses in the SSO domains are sent to SSO.
    pub enforce_sso: bool,
    /// Whether a new method's identity with the same verified email joins the existing account.
    pub link_verified_email: bool,
}

impl Gatehouse {
    /// The tenant's login policy (the default when none was set).
    pub async fn login_policy(&self, slug: &str) -> Result<LoginPolicy, AdminError> {
        Ok(self
            .load_tenant(slug)
            .await?
            .login_policy)
    }

    /// Replaces the tenant's login policy. Every method must be one this deployment offers;
    /// an unchanged policy records nothing.
    pub async fn set_login_policy(
        &self,
        slug: &str,
        input: LoginPolicyInput,
        actor: Actor,
        request_id: Option<String>,
    ) -> Result<LoginPolicy, AdminError> {
        self.load_tenant(slug).await?;
        let mut standard_methods = BTreeSet::new();
        for (index, name) in input
            .standard_methods
            .iter()
            .enumerate()
        {
            let field = format!("/standard_methods/{index}");
            let Some(method) = StandardMethod::parse(name) else {
                let known: Vec<&str> = StandardMethod::ALL
                    .iter()
                    .map(|m| m.as_str())
                    .collect();
                return Err(AdminError::Invalid {
                    field,
                    detail: format!("unknown method; known: {}", known.join(", ")),
                });
            };
            if !self.offers(method) {
                return Err(AdminError::Invalid {
                    field,
                    detail: format!("this deployment does not offer {}", method.as_str()),
                });
            }
            standard_methods.insert(method);
        }
        let policy = LoginPolicy {
            standard_methods,
            guests_allowed: input.guests_allowed,
            enforce_sso: input.enforce_sso,
            link_verified_email: input.link_verified_email,
        };

        let command = TenantCommand::SetLoginPolicy {
            policy: policy.clone(),
            actor: actor.clone(),
        };
        let metadata = Metadata { actor, request_id };
        let tenant = self
            .executor
            .execute::<Tenant>(slug, command, &metadata)
            .await
            .map_err(|error| match error {
                CommandError::Rejected(TenantError::NotFound) => AdminError::NotFound("tenant"),
                CommandError::Rejected(other) => AdminError::Conflict(other.to_string()),
                CommandError::Store(store) => AdminError::Store(store),
            })?;
        Ok(tenant.login_policy)
    }
}
