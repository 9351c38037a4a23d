//! Outgoing mail for standard login: over SMTP with lettre, or, when no SMTP server is
//! configured, as one `.eml` file per message (its plain text beside it as `.txt`) in a local
//! outbox folder (the zero-setup default, so that a newcomer can still sign in). Message
//! contents are never logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use zeroize::Zeroizing;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    StartTls,
    /// No TLS at all: only for a relay on loopback or a trusted network.
    None,
}

impl SmtpTls {
    /// Parses `tls`, `starttls` or `none`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "tls" => Some(SmtpTls::Tls),
            "starttls" => Some(SmtpTls::StartTls),
            "none" => Some(SmtpTls::None),
            _ => None,
        }
    }

    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Tls => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        }
    }
}

/// An SMTP server to send through.
pub struct SmtpSettings {
    /// Host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport protection.
    pub tls: SmtpTls,
    /// User name, when the server wants authentication.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<Zeroizing<String>>,
    /// Limit of one SMTP conversation.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &self
                    .password
                    .as_ref()
                    .map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Where messages go.
#[derive(Debug)]
pub enum MailDelivery {
    /// An SMTP server.
    Smtp(SmtpSettings),
    /// A local folder, one `.eml` file per message.
    Outbox(PathBuf),
}

/// Why a message could not be built or sent. Texts never contain the message.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The configuration is unusable (bad from address, bad TLS host, outbox not creatable).
    #[error("mail configuration: {0}")]
    Config(String),
    /// The recipient address cannot be used.
    #[error("the recipient address is not usable")]
    Recipient,
    /// The server or the outbox refused the message.
    #[error("the message could not be sent: {0}")]
    Send(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

/// Sends the messages of standard login.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    outbox: Option<PathBuf>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("delivery", &self.delivery())
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// A mailer for `delivery`, sending as `from` (`Name <address>` or a bare address). The
    /// outbox folder is created (owner-only) when missing.
    pub fn new(delivery: MailDelivery, from: &str) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Config(format!("the from address is invalid: {e}")))?;
        let (transport, outbox) = match delivery {
            MailDelivery::Smtp(settings) => (Transport::Smtp(smtp_transport(settings)?), None),
            MailDelivery::Outbox(dir) => {
                create_private_dir(&dir)?;
                (Transport::Outbox(AsyncFileTransport::new(&dir)), Some(dir))
            }
        };
        Ok(Mailer {
            transport,
            from,
            outbox,
        })
    }

    /// `smtp` or `outbox`, as recorded on `login.code_sent`.
    pub fn delivery(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }

    /// The outbox folder, in outbox mode.
    pub fn outbox(&self) -> Option<&Path> {
        self.outbox.as_deref()
    }

    /// Sends a plain-text message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to_text = to.to_owned();
        let to: Mailbox = to
            .parse()
            .map_err(|_| MailError::Recipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.clone())
            .map_err(|e| MailError::Send(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Transport::Outbox(outbox) => {
                let id = outbox
                    .send(message)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                // The .eml is the message as it would be sent, possibly quoted-printable (its
                // link then split over lines); beside it, the plain text for a person to read.
                let Some(dir) = &self.outbox else {
                    return Ok(());
                };
                let text = format!("To: {to}\nSubject: {subject}\n\n{body}", to = to_text);
                tokio::fs::write(dir.join(format!("{id}.txt")), text)
                    .await
                    .map_err(|e| MailError::Send(format!("outbox text: {e}")))
            }
        }
    }
}

fn smtp_transport(settings: SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls_parameters = || {
        TlsParameters::new(settings.host.clone())
            .map_err(|e| MailError::Config(format!("TLS for {}: {e}", settings.host)))
    };
    let tls = match settings.tls {
        SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        SmtpTls::StartTls => Tls::Required(tls_parameters()?),
        SmtpTls::None => Tls::None,
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
    if let Some(username) = settings.username {
        let password = settings
            .password
            .map(|p| p.to_string())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(username, password));
    }
    Ok(builder.build())
}

fn create_private_dir(dir: &Path) -> Result<(), MailError> {
    if dir.is_dir() {
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
        .map_err(|e| MailError::Config(format!("cannot create the outbox {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_keeps_one_file_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::new(
            MailDelivery::Outbox(outbox.clone()),
            "Gatehouse <gh@example.test>",
        )
        .unwrap();
        assert_eq!(mailer.delivery(), "outbox");
        mailer
            .send("guest@example.test", "Hello", "body text".into())
            .await
            .unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        // The message as sent, and its plain text beside it.
        assert_eq!(files[0].extension().unwrap(), "eml");
        assert_eq!(files[1], files[0].with_extension("txt"));
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        assert!(eml.contains("To: guest@example.test"), "{eml}");
        assert!(eml.contains("body text"), "{eml}");
        // A long line with a non-ASCII character: quoted-printable in the .eml, whole in the
        // .txt.
        let long = format!("Grüße, open https://gh.example/x/email-code/link?token={}", "T".repeat(60));
        mailer
            .send("guest@example.test", "Hello", long.clone())
            .await
            .unwrap();
        let texts: Vec<String> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.extension().unwrap() == "txt")
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(texts.iter().any(|t| t.contains(&long)), "{texts:?}");
    }

    #[tokio::test]
    async fn header_injection_in_the_recipient_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mailer =
            Mailer::new(MailDelivery::Outbox(dir.path().into()), "gh@example.test").unwrap();
        let sent = mailer
            .send("a@example.test\r\nBcc: b@example.test", "Hi", "x".into())
            .await;
        assert!(matches!(sent, Err(MailError::Recipient)), "{sent:?}");
    }

    #[test]
    fn a_bad_from_address_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(MailDelivery::Outbox(dir.path().into()), "not an address");
        assert!(matches!(mailer, Err(MailError::Config(_))));
    }
}
