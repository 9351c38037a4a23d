//! A real SMTP server for the black-box tests: `aiosmtpd` (PyPI, pinned in
//! tests/smtp-server/requirements.txt) started once per test binary by
//! tests/smtp-server/smtp-server.py, which creates its virtual environment on first use. It
//! listens on 127.0.0.1 without TLS and reports every message it receives, decoded, on its
//! standard output, where this fixture collects them.
//!
//! Needs `python3` with `venv` (and PyPI on the first run).

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::OnceCell;

use super::repo_root;

// The first start may create the virtual environment and install aiosmtpd.
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a test waits for a message to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(20);

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub text: String,
}

impl Mail {
    /// The 6-digit code: the first line of the body that is six digits and nothing else.
    pub fn code(&self) -> String {
        self.text
            .lines()
            .map(str::trim)
            .find(|line| line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no 6-digit code line in the mail:\n{}", self.text))
            .to_owned()
    }

    /// The one-click link.
    pub fn link(&self) -> String {
        link_in(&self.text)
    }
}

/// The first `http(s)://` URL with `/email-code/link?token=` in `text`.
pub fn link_in(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("/email-code/link?token="))
        .unwrap_or_else(|| panic!("no sign-in link in the mail:\n{text}"))
        .to_owned()
}

/// The test SMTP server, one per test binary.
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    pub version: String,
    pub log: PathBuf,
    received: Arc<Mutex<Vec<Mail>>>,
}

struct SmtpProcess {
    server: SmtpServer,
    _child: Child,
    // Never dropped: the server exits when the test binary exits and this pipe closes.
    _stdin: ChildStdin,
}

static SMTP: OnceCell<SmtpProcess> = OnceCell::const_new();

impl SmtpServer {
    /// Starts the server on first use.
    pub async fn shared() -> &'static SmtpServer {
        let process = SMTP
            .get_or_init(|| async {
                tokio::task::spawn_blocking(start)
                    .await
                    .expect("SMTP server start-up thread panicked")
            })
            .await;
        &process.server
    }

    /// `gatehouse serve` environment that sends through this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("GATEHOUSE_SMTP_HOST".into(), "127.0.0.1".into()),
            ("GATEHOUSE_SMTP_PORT".into(), self.port.to_string()),
            ("GATEHOUSE_SMTP_TLS".into(), "none".into()),
            (
                "GATEHOUSE_MAIL_FROM".into(),
                "Gatehouse Tests <gatehouse@tests.example>".into(),
            ),
        ]
    }

    /// Every message received so far for `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        let received = self
            .received
            .lock()
            .expect("mail list lock");
        received
            .iter()
            .filter(|m| {
                m.rcpt_tos
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(to))
            })
            .cloned()
            .collect()
    }

    /// Waits for the `n`th (1-based) message to `to`.
    pub async fn nth_mail_to(&self, to: &str, n: usize) -> Mail {
        let deadline = Instant::now() + MAIL_WAIT;
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "no message number {n} to {to} within {MAIL_WAIT:?} (got {}); server log:\n{}",
                    mails.len(),
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first message to `to`.
    pub async fn mail_to(&self, to: &str) -> Mail {
        self.nth_mail_to(to, 1).await
    }
}

fn start() -> SmtpProcess {
    let dir = repo_root().join("tests/smtp-server");
    let log = std::env::temp_dir().join(format!(
        "gatehouse-test-smtp-server-{}.log",
        std::process::id()
    ));
    let stderr = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let mut child = Command::new("python3")
        .arg("smtp-server.py")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start python3 smtp-server.py in {}: {e}", dir.display()));
    let stdin = child
        .stdin
        .take()
        .expect("SMTP server stdin");
    let stdout = child
        .stdout
        .take()
        .expect("SMTP server stdout");
    let received: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let (tx, rx) = mpsc::channel::<Value>();
    {
        let received = received.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if value.get("port").is_some() {
                    let _ = tx.send(value);
                    continue;
                }
                let strings = |key: &str| -> Vec<String> {
                    value[key]
                        .as_array()
                        .map(|list| {
                            list.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let mail = Mail {
                    rcpt_tos: strings("rcpt_tos"),
                    subject: value["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    text: value["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                };
                received
                    .lock()
                    .expect("mail list lock")
                    .push(mail);
            }
        });
    }
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(ready) => {
            let server = SmtpServer {
                port: ready["port"].as_u64().expect("port") as u16,
                version: ready["version"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                log,
                received,
            };
            eprintln!(
                "SMTP server: {} on 127.0.0.1:{}",
                server.version, server.port
            );
            SmtpProcess {
                server,
                _child: child,
                _stdin: stdin,
            }
        }
        Err(e) => {
            let _ = child.kill();
            panic!(
                "smtp-server.py did not print its ready line within {START_TIMEOUT:?} ({e}); its log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
}
