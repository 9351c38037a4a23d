//! Which account a sign-in lands on.
//!
//! Accounts are per tenant: an identity (tenant, connection, issuer, subject) is linked to one
//! user of that tenant, so the same person may be a guest in one tenant and a member in
//! another without the two ever meeting.
//!
//! Within a tenant, the first account that signs in with a *verified* email claims it: the
//! claim is an `Identity` link of its own, under the reserved connection id
//! [`VERIFIED_EMAIL`] with the lowercased address as subject, and so is read from its
//! aggregate like any identity (never from a projection) and taken once across all nodes.
//! A new identity (a method the person never used here) then joins the claiming account only
//! when the tenant's policy says `link_verified_email`; otherwise it gets an account of its
//! own. Unverified emails neither claim nor link. An identity already linked keeps its
//! account whatever the policy says later.

use crate::domain::user::{Identity, IdentityCommand};
use crate::ids::{ConnectionId, TenantSlug, UserId};
use crate::store::{CommandError, Metadata, StoreError};

use super::Gatehouse;

/// Connection id of email claims (reserved: no tenant connection may take it).
pub const VERIFIED_EMAIL: &str = "verified-email";

/// Issuer of email claims.
const ISSUER: &str = "gatehouse:verified_email";

fn claims_connection() -> ConnectionId {
    ConnectionId::parse(VERIFIED_EMAIL).expect("verified-email is a valid connection id")
}

impl Gatehouse {
    /// The user a sign-in by the identity `identity_id` lands on: its linked user, or for an
    /// identity never seen before, the account that claimed `email` (when `link` and the email
    /// is verified) or a new one. Records the identity link and, for a verified email, the
    /// claim if nobody made it yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn user_for_sign_in(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        (issuer, subject): (&str, &str),
        email: &str,
        email_verified: bool,
        link: bool,
        metadata: &Metadata,
    ) -> Result<(UserId, bool), String> {
        let identity_id = Identity::aggregate_id(slug, connection_id, issuer, subject);
        let identity: Identity = self
            .executor
            .load(&identity_id)
            .await
            .map_err(|e: StoreError| e.to_string())?;
        if let Some(user_id) = identity.user_id {
            // An account from before claims existed claims its address now, if still free.
            if email_verified {
                self.claim_email(slug, email, user_id, metadata)
                    .await?;
            }
            return Ok((user_id, false));
        }
        let fresh = UserId::new();
        let mut chosen = fresh;
        if email_verified {
            let owner = self
                .claim_email(slug, email, fresh, metadata)
                .await?;
            if link {
                chosen = owner;
            }
        }
        let link_identity = IdentityCommand::Link {
            tenant: slug.clone(),
            connection_id: connection_id.clone(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            user_id: chosen,
        };
        let linked: Identity = self
            .executor
            .execute(&identity_id, link_identity, metadata)
            .await
            .map_err(command_error)?;
        let user_id = linked
            .user_id
            .ok_or("identity link has no user")?;
        Ok((user_id, user_id != fresh))
    }
}

impl Gatehouse {
    /// Claims `email` in the tenant for `user_id` unless an account claimed it first; returns
    /// the account that holds the claim.
    async fn claim_email(
        &self,
        slug: &TenantSlug,
        email: &str,
        user_id: UserId,
        metadata: &Metadata,
    ) -> Result<UserId, String> {
        let claims = claims_connection();
        let address = email.to_lowercase();
        let claim_id = Identity::aggregate_id(slug, &claims, ISSUER, &address);
        let claim = IdentityCommand::Link {
            tenant: slug.clone(),
            connection_id: claims,
            issuer: ISSUER.to_owned(),
            subject: address,
            user_id,
        };
        let claimed: Identity = self
            .executor
            .execute(&claim_id, claim, metadata)
            .await
            .map_err(command_error)?;
        Ok(claimed.user_id.unwrap_or(user_id))
    }
}

fn command_error<E: std::error::Error>(error: CommandError<E>) -> String {
    match error {
        CommandError::Store(store) => store.to_string(),
        CommandError::Rejected(rejected) => rejected.to_string(),
    }
}
