//! Configuration: command-line flags, `GATEHOUSE_*` environment variables and an optional TOML
//! file, in that order of precedence, then built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use gatehouse_core::service::{
    EmailCodeSettings, MailDelivery, SmtpSettings, SmtpTls, StandardProviderConfig,
    GOOGLE_DISCOVERY_URL,
};
use serde::Deserialize;
use zeroize::Zeroizing;

/// Gatehouse: multi-tenant single sign-on (OIDC today; SAML and OAuth 2.0 as plugins).
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    /// TOML configuration file (keys as in `serve --help`, in snake_case).
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(Options),
    /// Print the OpenAPI document (JSON) to standard output.
    Openapi,
    /// Print a new random secret key for GATEHOUSE_SECRET_KEY.
    Keygen,
    /// Plugin library tools.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Audit log tamper evidence: verify the hash chains, manage the signing key.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Admin API credentials, directly on the configured store (no server needed).
    Credentials {
        #[command(subcommand)]
        command: CredentialsCommand,
    },
    /// Read-model maintenance.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
        #[command(flatten)]
        options: Options,
    },
}

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load one plugin library in a throwaway host (no database, no network) and exercise
    /// it: prints `ok: <protocol> <version>` (exit 0) or `refused: <reason>` (exit 1).
    Check(CheckOptions),
}

/// Options of `plugins check`.
#[derive(Debug, Args)]
pub struct CheckOptions {
    /// The plugin library (`lib<name>.so`).
    pub path: PathBuf,
    /// Plugin directory of the deployment, to find a duplicate protocol id [default: next to
    /// the binary].
    #[arg(long, env = "GATEHOUSE_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Time limit of one plugin call, in seconds [default: 30].
    #[arg(long, env = "GATEHOUSE_PLUGIN_TIMEOUT_SECS")]
    pub plugin_timeout_secs: Option<u64>,
}

/// Credential commands. Their events are recorded with the actor `system`.
#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Create a credential and print its token (once, on standard output; only its SHA-256 is
    /// stored). Its id and role go to standard error.
    Create {
        /// `platform_admin`, `tenant_admin` or `auditor`.
        #[arg(long)]
        role: String,
        /// Tenant slug (tenant admins and auditors).
        #[arg(long)]
        tenant: Option<String>,
        /// What it is for.
        #[arg(long)]
        label: Option<String>,
        /// RFC 3339 time after which it no longer works.
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        options: Options,
    },
    /// List credentials (never a token): id, role, tenant, status, label.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        options: Options,
    },
    /// Revoke a credential: its token is refused from the next request on, on every node.
    Revoke {
        /// Credential id.
        id: String,
        #[command(flatten)]
        options: Options,
    },
}

/// Read-model commands.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Empty every read model and rebuild it from the event store.
    Rebuild,
}

/// Audit chain commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute each tenant's audit hash chain, check every signed checkpoint, and name the
    /// first entry that was altered, removed, inserted or reordered. Exit 0 when all verify, 1
    /// when one does not.
    Verify {
        /// Only this tenant [default: every tenant].
        #[arg(long)]
        tenant: Option<String>,
        /// Print one JSON report per tenant instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        options: Options,
    },
    /// Print a new Ed25519 signing key for GATEHOUSE_AUDIT_SIGNING_KEY (its public key and key
    /// id go to standard error).
    Keygen,
    /// Print the public key (and key id) of the configured audit signing key, for auditors and
    /// for GATEHOUSE_AUDIT_VERIFY_KEYS after a rotation.
    PublicKey {
        #[command(flatten)]
        options: Options,
    },
}

/// Audit chain settings, resolved.
#[derive(Debug)]
pub struct AuditChainSettings {
    /// Base64 signing key, if configured.
    pub signing_key: Option<String>,
    /// Or a file holding it.
    pub signing_key_file: Option<PathBuf>,
    /// Base64 public keys of earlier signing keys.
    pub verify_keys: Vec<String>,
    /// Checkpoint at least every this many entries.
    pub checkpoint_every: i64,
    /// And every this many seconds.
    pub checkpoint_secs: i64,
}

/// Service options. Each may also be set by its environment variable or the TOML file.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "GATEHOUSE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Public base URL as browsers reach it; goes into redirect URLs
    /// [default: http://<listen>].
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory for the SQLite database and the generated secret key [default: ./data].
    #[arg(long, env = "GATEHOUSE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://...` [default: SQLite in the data dir].
    #[arg(long, env = "GATEHOUSE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of plugin libraries [default: next to the binary, as `cargo build` leaves
    /// them].
    #[arg(long, env = "GATEHOUSE_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Admin API bearer token. Without it, a token is generated on first start and printed
    /// once. Only its hash is stored.
    #[arg(long, env = "GATEHOUSE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Base64 of 32 bytes: the key that encrypts connection secrets in events. Required with
    /// PostgreSQL (every node needs the same key); with SQLite it is generated into
    /// `<data dir>/secret.key` when absent.
    #[arg(long, env = "GATEHOUSE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Allow outbound requests to loopback, private and link-local addresses (local testing
    /// only) [default: false].
    #[arg(long, env = "GATEHOUSE_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: Option<bool>,
    /// Take the client IP from `X-Forwarded-For` (only behind a proxy that sets it)
    /// [default: false].
    #[arg(long, env = "GATEHOUSE_TRUST_PROXY_HEADERS")]
    pub trust_proxy_headers: Option<bool>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log filter in tracing's syntax [default: info].
    #[arg(long, env = "GATEHOUSE_LOG")]
    pub log: Option<String>,
    /// Session lifetime in seconds [default: 28800].
    #[arg(long, env = "GATEHOUSE_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<i64>,
    /// Time allowed to complete a login at the identity provider, in seconds [default: 600].
    #[arg(long, env = "GATEHOUSE_LOGIN_TIMEOUT_SECS")]
    pub login_timeout_secs: Option<i64>,
    /// Time limit of one outbound HTTP request, in seconds [default: 10].
    #[arg(long, env = "GATEHOUSE_OUTBOUND_TIMEOUT_SECS")]
    pub outbound_timeout_secs: Option<u64>,
    /// Time limit of one plugin call, in seconds [default: 30].
    #[arg(long, env = "GATEHOUSE_PLUGIN_TIMEOUT_SECS")]
    pub plugin_timeout_secs: Option<u64>,
    /// Offer the email one-time code as a standard login method (each tenant still switches it
    /// on in its login policy) [default: true].
    #[arg(long, env = "GATEHOUSE_EMAIL_CODE")]
    pub email_code: Option<bool>,
    /// Lifetime of an email code and its link, in seconds [default: 600].
    #[arg(long, env = "GATEHOUSE_EMAIL_CODE_TTL_SECS")]
    pub email_code_ttl_secs: Option<i64>,
    /// Codes one email address may be sent per rate-limit window [default: 5].
    #[arg(long, env = "GATEHOUSE_EMAIL_CODE_MAX_PER_EMAIL")]
    pub email_code_max_per_email: Option<i64>,
    /// Codes one client IP may request per rate-limit window [default: 20].
    #[arg(long, env = "GATEHOUSE_EMAIL_CODE_MAX_PER_IP")]
    pub email_code_max_per_ip: Option<i64>,
    /// Length of the rate-limit window, in seconds [default: 900].
    #[arg(long, env = "GATEHOUSE_EMAIL_CODE_WINDOW_SECS")]
    pub email_code_window_secs: Option<i64>,
    /// SMTP server host for sign-in mail. Without it, each message is written as an .eml file
    /// to the outbox folder instead.
    #[arg(long, env = "GATEHOUSE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 465 with tls, 587 with starttls, 25 with none].
    #[arg(long, env = "GATEHOUSE_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// SMTP transport security: `tls`, `starttls` or `none` (a trusted relay only)
    /// [default: starttls].
    #[arg(long, env = "GATEHOUSE_SMTP_TLS")]
    pub smtp_tls: Option<String>,
    /// SMTP user name, when the server wants authentication.
    #[arg(long, env = "GATEHOUSE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password (environment or flag; refused in the TOML file, which is often shared).
    #[arg(long, env = "GATEHOUSE_SMTP_PASSWORD", hide_env_values = true)]
    #[serde(skip)]
    pub smtp_password: Option<String>,
    /// From address of sign-in mail [default: Gatehouse <gatehouse@localhost>].
    #[arg(long, env = "GATEHOUSE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Folder for sign-in mail when no SMTP host is set [default: <data dir>/outbox].
    #[arg(long, env = "GATEHOUSE_MAIL_OUTBOX")]
    pub mail_outbox: Option<PathBuf>,
    /// Base64 of the 32-byte Ed25519 private key that signs audit chain checkpoints (`gatehouse
    /// audit keygen` makes one) [default: derived from the secret key].
    #[arg(long, env = "GATEHOUSE_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,
    /// A file holding the audit signing key, instead of the key itself.
    #[arg(long, env = "GATEHOUSE_AUDIT_SIGNING_KEY_FILE")]
    pub audit_signing_key_file: Option<PathBuf>,
    /// Comma-separated base64 public keys of earlier audit signing keys, still trusted when
    /// verifying checkpoints they signed (key rotation).
    #[arg(long, env = "GATEHOUSE_AUDIT_VERIFY_KEYS")]
    pub audit_verify_keys: Option<String>,
    /// Sign an audit chain checkpoint at least every this many entries of a tenant
    /// [default: 1000].
    #[arg(long, env = "GATEHOUSE_AUDIT_CHECKPOINT_EVERY")]
    pub audit_checkpoint_every: Option<i64>,
    /// And for a tenant whose chain moved, at least every this many seconds [default: 300].
    #[arg(long, env = "GATEHOUSE_AUDIT_CHECKPOINT_SECS")]
    pub audit_checkpoint_secs: Option<i64>,
    /// Google OAuth client id: with its secret, offers "Sign in with Google" as a standard
    /// method (each tenant still switches it on). Redirect URL to register at Google:
    /// <public URL>/login/google/callback.
    #[arg(long, env = "GATEHOUSE_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,
    /// Google OAuth client secret (environment or flag; refused in the TOML file).
    #[arg(long, env = "GATEHOUSE_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub google_client_secret: Option<String>,
    /// Google's discovery document
    /// [default: https://accounts.google.com/.well-known/openid-configuration].
    #[arg(long, env = "GATEHOUSE_GOOGLE_DISCOVERY_URL")]
    pub google_discovery_url: Option<String>,
    /// Facebook app id: with its secret, offers "Sign in with Facebook" as a standard method.
    /// Redirect URL to register at Facebook: <public URL>/login/facebook/callback.
    #[arg(long, env = "GATEHOUSE_FACEBOOK_CLIENT_ID")]
    pub facebook_client_id: Option<String>,
    /// Facebook app secret (environment or flag; refused in the TOML file).
    #[arg(long, env = "GATEHOUSE_FACEBOOK_CLIENT_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub facebook_client_secret: Option<String>,
    /// Facebook's authorization endpoint [default: the OAuth 2.0 plugin's facebook preset].
    #[arg(long, env = "GATEHOUSE_FACEBOOK_AUTHORIZATION_URL")]
    pub facebook_authorization_url: Option<String>,
    /// Facebook's token endpoint [default: the preset's].
    #[arg(long, env = "GATEHOUSE_FACEBOOK_TOKEN_URL")]
    pub facebook_token_url: Option<String>,
    /// Facebook's user-info endpoint [default: the preset's].
    #[arg(long, env = "GATEHOUSE_FACEBOOK_USERINFO_URL")]
    pub facebook_userinfo_url: Option<String>,
}

/// The email-code method as configured.
#[derive(Debug)]
pub struct EmailCodeConfig {
    /// Code lifetime and rate limits.
    pub settings: EmailCodeSettings,
    /// SMTP server, or the outbox folder.
    pub delivery: MailDelivery,
    /// From address.
    pub from: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub plugin_dirs: Vec<PathBuf>,
    pub plugin_dir_is_default: bool,
    pub admin_token: Option<String>,
    pub secret_key: Option<String>,
    pub allow_private_networks: bool,
    pub trust_proxy_headers: bool,
    pub log_format: LogFormat,
    pub log: String,
    pub session_ttl_secs: i64,
    pub login_timeout_secs: i64,
    pub outbound_timeout_secs: u64,
    pub plugin_timeout_secs: u64,
    /// The email-code method, unless switched off.
    pub email_code: Option<EmailCodeConfig>,
    /// Audit chain signing and verification keys, and checkpoint periods.
    pub audit: AuditChainSettings,
    /// Google and Facebook, when their client is configured.
    pub standard_providers: Vec<StandardProviderConfig>,
}

impl Config {
    /// Merges flags/environment over the file over defaults, and checks the result.
    pub fn resolve(options: Options, file: Option<&Path>) -> anyhow::Result<Config> {
        let file: Options = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                // The parser's own message quotes the offending line, which may hold a secret
                // put in the wrong place: name the line and the problem only.
                toml::from_str(&text).map_err(|error| {
                    let line = error
                        .span()
                        .map(|span| {
                            let before = &text.as_bytes()[..span.start.min(text.len())];
                            before.iter().filter(|b| **b == b'\n').count() + 1
                        });
                    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
                    anyhow::anyhow!(
                        "invalid config file {}{at}: {}",
                        path.display(),
                        error.message().trim_end()
                    )
                })?
            }
            None => Options::default(),
        };
        macro_rules! pick {
            ($field:ident) => {
                options.$field.or(file.$field)
            };
        }
        let listen = pick!(listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let public_url = pick!(public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        let parsed = url::Url::parse(&public_url).context("GATEHOUSE_PUBLIC_URL is not a URL")?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || parsed.path() != "/"
        {
            bail!("GATEHOUSE_PUBLIC_URL must be an http(s) origin without path, query or fragment");
        }
        let data_dir = pick!(data_dir).unwrap_or_else(|| PathBuf::from("data"));
        let database_url = match pick!(database_url) {
            Some(url) => url,
            None => {
                create_private_dir(&data_dir)?;
                gatehouse_core::store::Db::sqlite_url(&data_dir)
            }
        };
        let (plugin_dirs, plugin_dir_is_default) = match pick!(plugin_dir) {
            Some(dir) => (vec![dir], false),
            None => (default_plugin_dirs(), true),
        };
        let log_format = match pick!(log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("GATEHOUSE_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let positive = |value: i64, name: &str| -> anyhow::Result<i64> {
            if value <= 0 {
                bail!("{name} must be positive");
            }
            Ok(value)
        };
        let email_code = if pick!(email_code).unwrap_or(true) {
            let settings = EmailCodeSettings {
                code_ttl_secs: positive(pick!(email_code_ttl_secs).unwrap_or(600), "email code TTL")?,
                max_per_email: positive(pick!(email_code_max_per_email).unwrap_or(5), "email code limit per email")?,
                max_per_ip: positive(pick!(email_code_max_per_ip).unwrap_or(20), "email code limit per IP")?,
                window_secs: positive(pick!(email_code_window_secs).unwrap_or(900), "email code window")?,
            };
            // The password is taken from the flag or the environment only, never the file.
            let password = options.smtp_password.clone().filter(|p| !p.is_empty());
            let delivery = match pick!(smtp_host).filter(|h| !h.is_empty()) {
                Some(host) => {
                    let tls_text = pick!(smtp_tls).unwrap_or_else(|| "starttls".to_owned());
                    let Some(tls) = SmtpTls::parse(&tls_text) else {
                        bail!("GATEHOUSE_SMTP_TLS must be tls, starttls or none, not {tls_text:?}");
                    };
                    let username = pick!(smtp_username).filter(|u| !u.is_empty());
                    if password.is_some() && username.is_none() {
                        bail!("GATEHOUSE_SMTP_PASSWORD is set but GATEHOUSE_SMTP_USERNAME is not");
                    }
                    MailDelivery::Smtp(SmtpSettings {
                        port: pick!(smtp_port).unwrap_or_else(|| tls.default_port()),
                        host,
                        tls,
                        username,
                        password: password.map(Zeroizing::new),
                        timeout: std::time::Duration::from_secs(pick!(outbound_timeout_secs).unwrap_or(10).max(1)),
                    })
                }
                None => MailDelivery::Outbox(
                    pick!(mail_outbox).unwrap_or_else(|| data_dir.join("outbox")),
                ),
            };
            Some(EmailCodeConfig {
                settings,
                delivery,
                from: pick!(mail_from).unwrap_or_else(|| "Gatehouse <gatehouse@localhost>".to_owned()),
            })
        } else {
            None
        };
        // Client secrets come from the flag or the environment only, never the file.
        let nonempty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let mut standard_providers = Vec::new();
        match (
            nonempty(pick!(google_client_id)),
            nonempty(options.google_client_secret.clone()),
        ) {
            (Some(client_id), Some(client_secret)) => {
                standard_providers.push(StandardProviderConfig::Google {
                    client_id,
                    client_secret,
                    discovery_url: nonempty(pick!(google_discovery_url))
                        .unwrap_or_else(|| GOOGLE_DISCOVERY_URL.to_owned()),
                })
            }
            (None, None) => {}
            (Some(_), None) => bail!("GATEHOUSE_GOOGLE_CLIENT_ID is set but GATEHOUSE_GOOGLE_CLIENT_SECRET is not"),
            (None, Some(_)) => bail!("GATEHOUSE_GOOGLE_CLIENT_SECRET is set but GATEHOUSE_GOOGLE_CLIENT_ID is not"),
        }
        match (
            nonempty(pick!(facebook_client_id)),
            nonempty(options.facebook_client_secret.clone()),
        ) {
            (Some(client_id), Some(client_secret)) => {
                standard_providers.push(StandardProviderConfig::Facebook {
                    client_id,
                    client_secret,
                    authorization_url: nonempty(pick!(facebook_authorization_url)),
                    token_url: nonempty(pick!(facebook_token_url)),
                    userinfo_url: nonempty(pick!(facebook_userinfo_url)),
                })
            }
            (None, None) => {}
            (Some(_), None) => bail!("GATEHOUSE_FACEBOOK_CLIENT_ID is set but GATEHOUSE_FACEBOOK_CLIENT_SECRET is not"),
            (None, Some(_)) => bail!("GATEHOUSE_FACEBOOK_CLIENT_SECRET is set but GATEHOUSE_FACEBOOK_CLIENT_ID is not"),
        }
        Ok(Config {
            audit: AuditChainSettings {
                signing_key: pick!(audit_signing_key).filter(|k| !k.trim().is_empty()),
                signing_key_file: pick!(audit_signing_key_file),
                verify_keys: pick!(audit_verify_keys)
                    .map(|keys| keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
                checkpoint_every: positive(pick!(audit_checkpoint_every).unwrap_or(1000), "audit checkpoint interval")?,
                checkpoint_secs: positive(pick!(audit_checkpoint_secs).unwrap_or(300), "audit checkpoint period")?,
            },
            standard_providers,
            email_code,
            listen,
            public_url,
            data_dir,
            database_url,
            plugin_dirs,
            plugin_dir_is_default,
            admin_token: pick!(admin_token).filter(|t| !t.is_empty()),
            secret_key: pick!(secret_key).filter(|k| !k.is_empty()),
            allow_private_networks: pick!(allow_private_networks).unwrap_or(false),
            trust_proxy_headers: pick!(trust_proxy_headers).unwrap_or(false),
            log_format,
            log: pick!(log).unwrap_or_else(|| "info".to_owned()),
            session_ttl_secs: positive(pick!(session_ttl_secs).unwrap_or(8 * 3600), "session TTL")?,
            login_timeout_secs: positive(pick!(login_timeout_secs).unwrap_or(600), "login timeout")?,
            outbound_timeout_secs: pick!(outbound_timeout_secs).unwrap_or(10).max(1),
            plugin_timeout_secs: pick!(plugin_timeout_secs).unwrap_or(30).max(1),
        })
    }

    /// True when the public URL is https, so cookies get the `Secure` flag.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// True when the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

/// The binary's own directory and its `deps/`, where `cargo build` leaves plugin libraries.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return vec![];
    };
    let deps = dir.join("deps");
    // A test binary lives in deps/ itself; its parent holds the plugins too.
    let parent = dir.parent().map(Path::to_path_buf);
    let mut dirs = vec![dir, deps];
    if let Some(parent) = parent {
        dirs.push(parent);
    }
    dirs
}

/// Creates the data directory readable by its owner only: it holds personal data and keys.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))
}
