//! How each aggregate's events land in the read models.

use async_trait::async_trait;
use cqrs_es::{Aggregate, EventEnvelope};
use sqlx::Row;

use super::audit::AuditRow;
use super::batch::{AttemptContext, Pending};
use super::{Conn, Project, Projections};
use crate::domain::login_attempt::{LoginAttempt, LoginAttemptEvent};
use crate::domain::session::{Session, SessionEvent};
use crate::domain::tenant::{Tenant, TenantEvent};
use crate::domain::user::{Identity, User, UserEvent};
use crate::on_conn;
use crate::store::StoreError;

fn base<A: Aggregate>(event: &EventEnvelope<A>, tenant: &str, kind: &str) -> AuditRow {
    AuditRow::for_event(event, tenant, kind)
}

#[async_trait]
impl Project<Tenant> for Projections {
    async fn project(
        &self,
        conn: &mut Conn<'_>,
        pending: &mut Pending,
        event: &EventEnvelope<Tenant>,
    ) -> Result<(), StoreError> {
        let tenant = event.aggregate_id.as_str();
        let mut row = base(
            event,
            tenant,
            &cqrs_es::DomainEvent::event_type(&event.payload),
        );
        match &event.payload {
            TenantEvent::Created {
                display_name,
                app_url,
                actor,
                ..
            } => {
                row.actor = Some(actor.0.clone());
                let sql = "INSERT INTO tenants_view (slug, display_name, app_url, created_at, \
                           updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (slug) DO NOTHING";
                on_conn!(conn, |c| {
                    sqlx::query(sql)
                        .bind(tenant)
                        .bind(display_name)
                        .bind(app_url)
                        .bind(row.time)
                        .execute(&mut **c)
                        .await?;
                });
            }
            TenantEvent::ConnectionConfigured {
                connection_id,
                protocol,
                label,
                actor,
                ..
            } => {
                row.actor = Some(actor.0.clone());
                row.connection_id = Some(connection_id.to_string());
                row.protocol = Some(protocol.clone());
                let sql = "INSERT INTO connections_view (tenant, connection_id, protocol, label, \
                           created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                           ON CONFLICT (tenant, connection_id) DO UPDATE SET \
                           protocol = excluded.protocol, label = excluded.label, \
                           updated_at = excluded.updated_at";
                on_conn!(conn, |c| {
                    sqlx::query(sql)
                        .bind(tenant)
                        .bind(connection_id.as_str())
                        .bind(protocol)
                        .bind(label)
                        .bind(row.time)
                        .execute(&mut **c)
                        .await?;
                });
            }
            TenantEvent::ConnectionWarningRaised {
                connection_id,
                warning,
                actor,
            } => {
                row.actor = Some(actor.0.clone());
                row.connection_id = Some(connection_id.to_string());
                row.detail = Some(warning.clone());
            }
            TenantEvent::ConnectionRemoved {
                connection_id,
                actor,
            } => {
                row.actor = Some(actor.0.clone());
                row.connection_id = Some(connection_id.to_string());
                let sql = "DELETE FROM connections_view WHERE tenant = $1 AND connection_id = $2";
                on_conn!(conn, |c| {
                    sqlx::query(sql)
                        .bind(tenant)
                        .bind(connection_id.as_str())
                        .execute(&mut **c)
                        .await?;
                });
            }
            TenantEvent::LoginPolicyChanged { policy, actor } => {
                row.actor = Some(actor.0.clone());
                let methods: Vec<&str> = policy
                    .standard_methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect();
                row.detail = Some(format!(
                    "standard_methods=[{}] guests_allowed={} enforce_sso={}",
                    methods.join(","),
                    policy.guests_allowed,
                    policy.enforce_sso
                ));
            }
        }
        pending.audit(row);
        Ok(())
    }
}

impl Projections {
    /// The context recorded at an attempt's start (in this batch or an earlier one).
    async fn attempt_context(
        &self,
        conn: &mut Conn<'_>,
        pending: &mut Pending,
        attempt_id: &str,
    ) -> Result<AttemptContext, StoreError> {
        pending
            .attempt(conn, attempt_id)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("attempt {attempt_id} has no projected start"))
            })
    }
}

#[async_trait]
impl Project<LoginAttempt> for Projections {
    async fn project(
        &self,
        conn: &mut Conn<'_>,
        pending: &mut Pending,
        event: &EventEnvelope<LoginAttempt>,
    ) -> Result<(), StoreError> {
        let attempt_id = event.aggregate_id.as_str();
        let kind = cqrs_es::DomainEvent::event_type(&event.payload);
        let mut row = match &event.payload {
            LoginAttemptEvent::Started(started) => {
                let mut row = base(event, started.tenant.as_str(), &kind);
                row.connection_id = started
                    .connection_id
                    .as_ref()
                    .map(ToString::to_string);
                row.protocol = started.protocol.clone();
                row.client_ip = started.client_ip.clone();
                row.user_agent = started.user_agent.clone();
                pending.start_attempt(
                    attempt_id,
                    AttemptContext {
                        tenant: started.tenant.as_str().to_owned(),
                        connection_id: row.connection_id.clone(),
                        protocol: row.protocol.clone(),
                        client_ip: row.client_ip.clone(),
                        user_agent: row.user_agent.clone(),
                    },
                    row.time,
                );
                row
            }
            LoginAttemptEvent::Succeeded(succeeded) => {
                let context = self
                    .attempt_context(conn, pending, attempt_id)
                    .await?;
                let mut row = base(event, &context.tenant, &kind);
                row.with_context(context);
                row.outcome = Some("succeeded".to_owned());
                row.email = Some(succeeded.email.clone());
                row.user_id = Some(succeeded.user_id.to_string());
                row
            }
            LoginAttemptEvent::Failed {
                reason,
                detail,
                email,
            } => {
                let context = self
                    .attempt_context(conn, pending, attempt_id)
                    .await?;
                let mut row = base(event, &context.tenant, &kind);
                row.with_context(context);
                row.outcome = Some("failed".to_owned());
                row.reason = Some(reason.clone());
                row.detail = Some(detail.clone());
                row.email = email.clone();
                row
            }
            LoginAttemptEvent::CodeRequested { email } => {
                let context = self
                    .attempt_context(conn, pending, attempt_id)
                    .await?;
                let mut row = base(event, &context.tenant, &kind);
                row.with_context(context);
                row.email = Some(email.clone());
                row
            }
            LoginAttemptEvent::CodeSent { email, delivery } => {
                let context = self
                    .attempt_context(conn, pending, attempt_id)
                    .await?;
                let mut row = base(event, &context.tenant, &kind);
                row.with_context(context);
                row.email = Some(email.clone());
                row.detail = Some(format!("delivered to {delivery}"));
                row
            }
            LoginAttemptEvent::CodeWrong { tries_left, email } => {
                let context = self
                    .attempt_context(conn, pending, attempt_id)
                    .await?;
                let mut row = base(event, &context.tenant, &kind);
                row.with_context(context);
                row.email = email.clone();
                row.reason = Some("code_wrong".to_owned());
                row.detail = Some(format!("{tries_left} tries left"));
                row
            }
        };
        row.attempt_id = Some(attempt_id.to_owned());
        pending.audit(row);
        Ok(())
    }
}

impl AuditRow {
    fn with_context(&mut self, context: AttemptContext) {
        self.connection_id = context.connection_id;
        self.protocol = context.protocol;
        self.client_ip = context.client_ip;
        self.user_agent = context.user_agent;
    }
}

#[async_trait]
impl Project<User> for Projections {
    async fn project(
        &self,
        conn: &mut Conn<'_>,
        pending: &mut Pending,
        event: &EventEnvelope<User>,
    ) -> Result<(), StoreError> {
        let user_id = event.aggregate_id.as_str();
        let kind = cqrs_es::DomainEvent::event_type(&event.payload);
        let mut row = match &event.payload {
            UserEvent::Provisioned {
                tenant,
                connection_id,
                subject,
                email,
                name,
            } => {
                let mut row = base(event, tenant.as_str(), &kind);
                row.connection_id = Some(connection_id.to_string());
                row.email = Some(email.clone());
                let sql =
                    "INSERT INTO users_view (tenant, user_id, connection_id, subject, email, \
                           name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                           ON CONFLICT (tenant, user_id) DO NOTHING";
                on_conn!(conn, |c| {
                    sqlx::query(sql)
                        .bind(tenant.as_str())
                        .bind(user_id)
                        .bind(connection_id.as_str())
                        .bind(subject)
                        .bind(email)
                        .bind(name)
                        .bind(row.time)
                        .execute(&mut **c)
                        .await?;
                });
                row
            }
            UserEvent::ProfileUpdated { email, name } => {
                let tenant: String = on_conn!(conn, |c| {
                    sqlx::query("SELECT tenant FROM users_view WHERE user_id = $1")
                        .bind(user_id)
                        .fetch_one(&mut **c)
                        .await?
                        .try_get("tenant")?
                });
                let mut row = base(event, &tenant, &kind);
                row.email = Some(email.clone());
                let sql = "UPDATE users_view SET email = $1, name = $2, updated_at = $3 \
                           WHERE user_id = $4";
                on_conn!(conn, |c| {
                    sqlx::query(sql)
                        .bind(email)
                        .bind(name)
                        .bind(row.time)
                        .bind(user_id)
                        .execute(&mut **c)
                        .await?;
                });
                row
            }
        };
        row.user_id = Some(user_id.to_owned());
        pending.audit(row);
        Ok(())
    }
}

#[async_trait]
impl Project<Identity> for Projections {
    async fn project(
        &self,
        _conn: &mut Conn<'_>,
        _pending: &mut Pending,
        _event: &EventEnvelope<Identity>,
    ) -> Result<(), StoreError> {
        // Identity links are read from their aggregate; user.provisioned is the audit entry.
        Ok(())
    }
}

#[async_trait]
impl Project<Session> for Projections {
    async fn project(
        &self,
        conn: &mut Conn<'_>,
        pending: &mut Pending,
        event: &EventEnvelope<Session>,
    ) -> Result<(), StoreError> {
        let kind = cqrs_es::DomainEvent::event_type(&event.payload);
        let row = match &event.payload {
            SessionEvent::Started(started) => {
                let mut row = base(event, started.tenant.as_str(), &kind);
                let attempt_id = started.attempt_id.to_string();
                if let Some(context) = pending
                    .attempt(conn, &attempt_id)
                    .await?
                {
                    row.with_context(context);
                }
                row.user_id = Some(started.user_id.to_string());
                row.attempt_id = Some(started.attempt_id.to_string());
                row.connection_id = Some(started.connection_id.to_string());
                row.email = Some(started.email.clone());
                row
            }
            SessionEvent::Ended {
                tenant,
                user_id,
                reason,
            } => {
                let mut row = base(event, tenant.as_str(), &kind);
                row.user_id = Some(user_id.to_string());
                row.reason = Some(reason.clone());
                row
            }
        };
        pending.audit(row);
        Ok(())
    }
}
