//! A tenant's SSO configuration at any past moment, and what changed between two moments, who
//! changed it and when: folded straight from the `Tenant` aggregate's events in the event store
//! (never from a read model, which may lag or be rebuilt).
//!
//! Moments are compared with the `time` each event's metadata records. Events are folded in
//! sequence order and the fold stops at the first event recorded after the moment, so every
//! configuration shown is one the tenant really had, even if two nodes' clocks disagree.
//!
//! Secrets never leave: a secret field of a connection (each field the protocol's plugin
//! declares secret, and any sealed value) is shown as `<field>_set: true|false`, as the admin
//! API's GET does, and a diff says only that it was added, removed or changed. Whether a kept
//! secret changed is decided on a keyed hash of its opened value, held in memory only (a kept
//! secret is sealed again with a fresh nonce on every update, so ciphertexts always differ).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::Aggregate;
use serde_json::{json, Map, Value};

use super::{config_secrets, Gatehouse};
use crate::crypto::sha256_hex;
use crate::domain::tenant::{Tenant, TenantEvent};
use crate::ids::TenantSlug;
use crate::store::{EventRepo, StoreError};

/// Why a configuration history request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigHistoryError {
    /// No tenant with this slug was ever created.
    #[error("no such tenant")]
    TenantNotFound,
    /// The moment asked for lies before the tenant was created.
    #[error("the tenant did not exist yet at this time; it was created at {created}")]
    BeforeCreation {
        /// When the tenant was created.
        created: DateTime<Utc>,
    },
    /// Storage failed, or a stored event could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who made a change, and when: one event of the tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeAuthor {
    /// The event's sequence number in the tenant's stream (1 for the creation).
    pub sequence: usize,
    /// When the event was recorded.
    pub time: DateTime<Utc>,
    /// Who caused it: `admin:<credential id>`, or `system`.
    pub actor: String,
    /// Event type, such as `tenant.connection.configured`.
    pub event_type: String,
    /// Request id of the API request that caused it, when there was one.
    pub request_id: Option<String>,
}

impl ChangeAuthor {
    /// The admin credential id when an admin credential acted.
    pub fn credential_id(&self) -> Option<&str> {
        self.actor.strip_prefix("admin:")
    }
}

/// A tenant's configuration at one moment.
#[derive(Clone, Debug)]
pub struct ConfigSnapshot {
    /// Tenant slug.
    pub tenant: String,
    /// The moment asked for.
    pub at: DateTime<Utc>,
    /// The last event folded into this configuration.
    pub last_change: ChangeAuthor,
    /// Settings, connections (by id, secrets masked) and login policy, as JSON.
    pub config: Value,
}

/// What happened to one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The field did not exist before.
    Added,
    /// The field has a new value.
    Changed,
    /// The field no longer exists.
    Removed,
}

/// One field changed by one event.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigChange {
    /// The event that made the change.
    pub author: ChangeAuthor,
    /// JSON pointer (RFC 6901) of the field in the configuration document.
    pub path: String,
    /// Added, changed or removed.
    pub kind: ChangeKind,
    /// Value before (absent for an addition and for every secret).
    pub old: Option<Value>,
    /// Value after (absent for a removal and for every secret).
    pub new: Option<Value>,
    /// True for a secret field: no value is ever given.
    pub secret: bool,
}

/// The changes between two moments.
#[derive(Clone, Debug)]
pub struct ConfigDiff {
    /// Tenant slug.
    pub tenant: String,
    /// Start moment; changes recorded after it count.
    pub from: DateTime<Utc>,
    /// End moment; changes recorded at or before it count.
    pub to: DateTime<Utc>,
    /// Sequence of the last event in force at `from` (0 when the tenant did not exist yet).
    pub from_sequence: usize,
    /// Sequence of the last event in force at `to`.
    pub to_sequence: usize,
    /// Every field change in between, in the order made (by event, then by path).
    pub changes: Vec<ConfigChange>,
}

impl Gatehouse {
    /// The tenant's configuration as it was at `at`: tenant settings, connections with their
    /// secrets masked, and the login policy, from every event recorded up to `at`.
    ///
    /// Fails with `BeforeCreation` when the tenant was created after `at`, and with
    /// `TenantNotFound` when it never was.
    pub async fn config_at(
        &self,
        slug: &str,
        at: DateTime<Utc>,
    ) -> Result<ConfigSnapshot, ConfigHistoryError> {
        let events = self.tenant_events(slug).await?;
        let created = created_at(&events);

        let mut tenant = Tenant::default();
        let mut last = None;
        for (author, event) in events
            .into_iter()
            .take_while(|(a, _)| a.time <= at)
        {
            tenant.apply(event);
            last = Some(author);
        }
        let Some(last_change) = last.filter(|_| tenant.exists()) else {
            return Err(ConfigHistoryError::BeforeCreation { created });
        };
        let mut secrets = SecretFingerprints::default();
        let rendered = self.render(slug, &tenant, &mut secrets);
        Ok(ConfigSnapshot {
            tenant: slug.to_owned(),
            at,
            last_change,
            config: rendered.shown,
        })
    }

    /// Every configuration change recorded after `from` and up to `to`, field by field, each
    /// with the event (who, when) that made it. A `from` before the tenant existed starts from
    /// nothing, so the tenant's creation shows as added fields; a `to` before it is refused.
    pub async fn config_diff(
        &self,
        slug: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ConfigDiff, ConfigHistoryError> {
        let events = self.tenant_events(slug).await?;
        let created = created_at(&events);

        let mut tenant = Tenant::default();
        let mut secrets = SecretFingerprints::default();
        let mut from_sequence = 0;
        let mut to_sequence = 0;
        let mut before: Option<Rendered> = None;
        let mut changes = Vec::new();
        for (author, event) in events
            .into_iter()
            .take_while(|(a, _)| a.time <= to)
        {
            if author.time <= from {
                tenant.apply(event);
                from_sequence = author.sequence;
                to_sequence = author.sequence;
                continue;
            }
            // The first event after `from` finds the configuration in force at `from`.
            let old = match before.take() {
                Some(rendered) => rendered,
                None => self.render(slug, &tenant, &mut secrets),
            };
            tenant.apply(event);
            to_sequence = author.sequence;
            let new = self.render(slug, &tenant, &mut secrets);
            let mut fields = Vec::new();
            diff_values(
                &mut String::new(),
                Some(&old.plain),
                Some(&new.plain),
                &mut fields,
            );
            diff_secrets(&old.secrets, &new.secrets, &mut fields);
            fields.sort_by(|a, b| a.path.cmp(&b.path));
            changes.extend(
                fields
                    .into_iter()
                    .map(|field| ConfigChange {
                        author: author.clone(),
                        path: field.path,
                        kind: field.kind,
                        old: field.old,
                        new: field.new,
                        secret: field.secret,
                    }),
            );
            before = Some(new);
        }
        if to_sequence == 0 || !tenant.exists() {
            return Err(ConfigHistoryError::BeforeCreation { created });
        }
        Ok(ConfigDiff {
            tenant: slug.to_owned(),
            from,
            to,
            from_sequence,
            to_sequence,
            changes,
        })
    }

    /// The tenant's events in sequence order, each with who recorded it and when.
    async fn tenant_events(
        &self,
        slug: &str,
    ) -> Result<Vec<(ChangeAuthor, TenantEvent)>, ConfigHistoryError> {
        if TenantSlug::parse(slug).is_err() {
            return Err(ConfigHistoryError::TenantNotFound);
        }
        let stored = EventRepo::new(&self.db)
            .get_events::<Tenant>(slug)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        if stored.is_empty() {
            return Err(ConfigHistoryError::TenantNotFound);
        }
        stored.into_iter().map(decode).collect()
    }

    /// The configuration document of `tenant`, with secrets taken out.
    fn render(&self, slug: &str, tenant: &Tenant, secrets: &mut SecretFingerprints) -> Rendered {
        let mut connections = Map::new();
        let mut shown_connections = Map::new();
        let mut secret_paths = BTreeMap::new();
        for (id, connection) in &tenant.connections {
            let declared = self
                .plugins
                .plugin(&connection.protocol)
                .map(|p| p.secret_fields.clone())
                .unwrap_or_default();
            let mut config = connection.config.clone();
            let mut pointers: BTreeSet<String> = declared.iter().cloned().collect();
            sealed_pointers(&config, &mut String::new(), &mut pointers);
            let mut flags = Vec::new();
            for pointer in &pointers {
                let taken = take_pointer(&mut config, pointer).filter(|v| !v.is_null());
                if let Some(value) = &taken {
                    let path = format!("/connections/{id}/config{pointer}");
                    let fingerprint = secrets.of(self, slug, id.as_str(), pointer, value);
                    secret_paths.insert(path, fingerprint);
                }
                flags.push((pointer.clone(), taken.is_some()));
            }
            let mut shown_config = config.clone();
            for (pointer, present) in flags {
                set_flag(&mut shown_config, &pointer, present);
            }
            let entry = |config: Value| {
                json!({
                    "protocol": connection.protocol,
                    "label": connection.label,
                    "config": config,
                })
            };
            connections.insert(id.to_string(), entry(config));
            shown_connections.insert(id.to_string(), entry(shown_config));
        }
        let document = |connections: Map<String, Value>| {
            if !tenant.exists() {
                return Value::Object(Map::new());
            }
            json!({
                "slug": tenant.slug.as_ref().map(ToString::to_string),
                "display_name": tenant.display_name,
                "app_url": tenant.app_url,
                "return_origins": tenant.return_origins,
                "connections": connections,
                "login_policy": tenant.login_policy,
            })
        };
        Rendered {
            plain: document(connections),
            shown: document(shown_connections),
            secrets: secret_paths,
        }
    }
}

/// A configuration document three ways: without secrets (for diffs), with `<field>_set`
/// flags in their place (for display), and the secrets' fingerprints by JSON pointer.
struct Rendered {
    plain: Value,
    shown: Value,
    secrets: BTreeMap<String, String>,
}

/// Keyed hashes of opened secrets, cached by ciphertext so each is opened once per request.
#[derive(Default)]
struct SecretFingerprints {
    by_stored: HashMap<String, String>,
}

impl SecretFingerprints {
    fn of(
        &mut self,
        gatehouse: &Gatehouse,
        slug: &str,
        conn: &str,
        pointer: &str,
        value: &Value,
    ) -> String {
        let stored = value.to_string();
        if let Some(known) = self.by_stored.get(&stored) {
            return known.clone();
        }
        let fingerprint = if value.get("$sealed").is_some() {
            match config_secrets::open_value(&gatehouse.key, value, slug, conn, pointer) {
                Some(plain) => gatehouse
                    .key
                    .mac_hex("config-history-secret", &plain),
                // Unreadable with this key: only an identical ciphertext counts as equal.
                None => format!("sealed:{}", sha256_hex(&stored)),
            }
        } else {
            // A secret field stored unsealed (a field declared secret after it was recorded).
            gatehouse
                .key
                .mac_hex("config-history-secret", &stored)
        };
        self.by_stored
            .insert(stored, fingerprint.clone());
        fingerprint
    }
}

/// One changed field, before it is attributed to an event.
struct FieldChange {
    path: String,
    kind: ChangeKind,
    old: Option<Value>,
    new: Option<Value>,
    secret: bool,
}

/// When the tenant was created: the time of its first event (the list is never empty).
fn created_at(events: &[(ChangeAuthor, TenantEvent)]) -> DateTime<Utc> {
    events
        .first()
        .map(|(author, _)| author.time)
        .unwrap_or_default()
}

/// Reads one stored tenant event with its metadata.
fn decode(stored: SerializedEvent) -> Result<(ChangeAuthor, TenantEvent), ConfigHistoryError> {
    let corrupt = |what: &str| {
        StoreError::Corrupt(format!(
            "tenant {} event {}: {what}",
            stored.aggregate_id, stored.sequence
        ))
    };
    let time = stored
        .metadata
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| corrupt("no recorded time"))?;
    let text = |key: &str| {
        stored
            .metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let event: TenantEvent = serde_json::from_value(stored.payload.clone())
        .map_err(|_| corrupt("unreadable payload"))?;
    let author = ChangeAuthor {
        sequence: stored.sequence,
        time,
        actor: text("actor").unwrap_or_else(|| "unknown".to_owned()),
        event_type: stored.event_type.clone(),
        request_id: text("request_id"),
    };
    Ok((author, event))
}

/// Adds the pointer of every sealed value (`{"$sealed": ...}`) inside `value`.
fn sealed_pointers(value: &Value, path: &mut String, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("$sealed") => {
            out.insert(path.clone());
        }
        Value::Object(map) => {
            for (key, child) in map {
                let len = path.len();
                push_token(path, key);
                sealed_pointers(child, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&index.to_string());
                sealed_pointers(child, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Removes and returns the value at `pointer` (an object member or array element).
fn take_pointer(value: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let last = unescape(last);
    match value.pointer_mut(parent)? {
        Value::Object(map) => map.remove(&last),
        // An array element is blanked rather than removed, so other pointers stay valid.
        Value::Array(items) => {
            let slot = items.get_mut(last.parse::<usize>().ok()?)?;
            Some(std::mem::replace(slot, Value::Null))
        }
        _ => None,
    }
}

/// Puts `<field>_set: present` beside where the secret at `pointer` was, as the admin API
/// shows it.
fn set_flag(config: &mut Value, pointer: &str, present: bool) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(map)) = config.pointer_mut(parent) {
        map.insert(format!("{}_set", unescape(last)), Value::Bool(present));
    }
}

/// Appends one RFC 6901 reference token to a JSON pointer.
fn push_token(path: &mut String, key: &str) {
    path.push('/');
    path.push_str(
        &key.replace('~', "~0")
            .replace('/', "~1"),
    );
}

fn unescape(token: &str) -> String {
    token
        .replace("~1", "/")
        .replace("~0", "~")
}

/// Lists the fields that differ between `old` and `new` under `path`. Objects are compared
/// member by member; anything else, arrays included, as one value.
fn diff_values(
    path: &mut String,
    old: Option<&Value>,
    new: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let len = path.len();
                push_token(path, key);
                diff_values(path, a.get(key), b.get(key), out);
                path.truncate(len);
            }
        }
        (Some(Value::Object(a)), None) if !a.is_empty() => {
            for (key, child) in a {
                let len = path.len();
                push_token(path, key);
                diff_values(path, Some(child), None, out);
                path.truncate(len);
            }
        }
        (None, Some(Value::Object(b))) if !b.is_empty() => {
            for (key, child) in b {
                let len = path.len();
                push_token(path, key);
                diff_values(path, None, Some(child), out);
                path.truncate(len);
            }
        }
        (None, None) => {}
        (old, new) if old == new => {}
        (old, new) => out.push(FieldChange {
            path: path.clone(),
            kind: match (old, new) {
                (None, _) => ChangeKind::Added,
                (_, None) => ChangeKind::Removed,
                _ => ChangeKind::Changed,
            },
            old: old.cloned(),
            new: new.cloned(),
            secret: false,
        }),
    }
}

/// Lists the secrets added, removed or changed, without any value.
fn diff_secrets(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    out: &mut Vec<FieldChange>,
) {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        let kind = match (old.get(path), new.get(path)) {
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (Some(a), Some(b)) if a != b => ChangeKind::Changed,
            _ => continue,
        };
        out.push(FieldChange {
            path: path.clone(),
            kind,
            old: None,
            new: None,
            secret: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(old: Value, new: Value) -> Vec<(String, ChangeKind, Option<Value>, Option<Value>)> {
        let mut out = Vec::new();
        diff_values(&mut String::new(), Some(&old), Some(&new), &mut out);
        out.into_iter()
            .map(|c| (c.path, c.kind, c.old, c.new))
            .collect()
    }

    #[test]
    fn objects_are_compared_field_by_field_and_arrays_whole() {
        let old = json!({"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": true});
        let new = json!({"a": 1, "b": {"c": [1, 2, 3], "d": "x"}, "new": {"e": null}});
        assert_eq!(
            changes(old, new),
            vec![
                (
                    "/b/c".into(),
                    ChangeKind::Changed,
                    Some(json!([1, 2])),
                    Some(json!([1, 2, 3]))
                ),
                ("/gone".into(), ChangeKind::Removed, Some(json!(true)), None),
                ("/new/e".into(), ChangeKind::Added, None, Some(Value::Null)),
            ]
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let found = changes(json!({}), json!({"a/b": {"~x": 1}}));
        assert_eq!(found[0].0, "/a~1b/~0x");
        let mut value = json!({"a/b": {"~x": 1}});
        assert_eq!(take_pointer(&mut value, "/a~1b/~0x"), Some(json!(1)));
        assert_eq!(value, json!({"a/b": {}}));
    }

    #[test]
    fn an_empty_object_that_appears_is_one_change() {
        let found = changes(json!({}), json!({"x": {}}));
        assert_eq!(
            found,
            vec![("/x".into(), ChangeKind::Added, None, Some(json!({})))]
        );
    }

    #[test]
    fn sealed_values_are_found_anywhere() {
        let config = json!({
            "client_secret": {"$sealed": {"alg": "A256GCM"}},
            "nested": [{"key": {"$sealed": {}}}],
            "plain": {"$sealed": 1, "other": 2},
        });
        let mut found = BTreeSet::new();
        sealed_pointers(&config, &mut String::new(), &mut found);
        let found: Vec<&str> = found
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(found, vec!["/client_secret", "/nested/0/key"]);
    }

    #[test]
    fn secrets_are_reported_without_values() {
        let old = BTreeMap::from([
            ("/s".to_owned(), "a".to_owned()),
            ("/t".to_owned(), "b".to_owned()),
        ]);
        let new = BTreeMap::from([
            ("/s".to_owned(), "a2".to_owned()),
            ("/u".to_owned(), "c".to_owned()),
        ]);
        let mut out = Vec::new();
        diff_secrets(&old, &new, &mut out);
        let kinds: Vec<(&str, ChangeKind)> = out
            .iter()
            .map(|c| (c.path.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("/s", ChangeKind::Changed),
                ("/t", ChangeKind::Removed),
                ("/u", ChangeKind::Added)
            ]
        );
        assert!(out
            .iter()
            .all(|c| c.secret && c.old.is_none() && c.new.is_none()));
    }
}
