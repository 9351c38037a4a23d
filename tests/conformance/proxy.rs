//! A fault-injecting reverse proxy in front of a real identity provider.
//!
//! This is the one home-made part of the suite, and it exists because no real "broken IdP"
//! does: the proxy forwards every request to the real IdP unchanged (method, path, query,
//! headers including `Host`, body) and sends its answer back, except on the one path a case
//! sabotages, where it waits longer than Gatehouse's outbound time limit or answers garbage.
//! HTTP is spoken by actix-web (server side) and reqwest (client side); nothing here parses
//! HTTP by hand.
//!
//! actix-web needs its own actix system, so the proxy runs on a thread of its own; tests talk
//! to it through [`FaultProxy`], which stops it on Drop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// What the proxy does to requests for the sabotaged path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Waits this long, then forwards (a slow upstream).
    Delay(Duration),
    /// Answers this instead of forwarding.
    Answer {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// Forwards, then sends back only the first half of the real answer's body.
    TruncateBody,
    /// Forwards, then replaces the real answer's `Content-Type`.
    Retype(&'static str),
}

/// The malformed answers every back channel is tried with (see `cases::malformed_upstream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// 200 `application/json` whose body is binary noise (not UTF-8).
    Garbage,
    /// The real answer cut in half: truncated JSON or XML.
    Truncated,
    /// The real answer with `Content-Type: text/html`.
    WrongContentType,
    /// 200 `text/html`: a maintenance page in place of the protocol answer.
    HtmlPage,
    /// 200 `application/xml` that is not well-formed XML.
    InvalidXml,
    /// 200 `application/json` with an empty body.
    Empty,
    /// 200 `application/json`, well-formed but not the protocol's shape.
    UnexpectedJson,
}

impl Malformed {
    pub const ALL: [Malformed; 7] = [
        Malformed::Garbage,
        Malformed::Truncated,
        Malformed::WrongContentType,
        Malformed::HtmlPage,
        Malformed::InvalidXml,
        Malformed::Empty,
        Malformed::UnexpectedJson,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Malformed::Garbage => "garbage",
            Malformed::Truncated => "truncated",
            Malformed::WrongContentType => "wrong_content_type",
            Malformed::HtmlPage => "html_page",
            Malformed::InvalidXml => "invalid_xml",
            Malformed::Empty => "empty",
            Malformed::UnexpectedJson => "unexpected_json",
        }
    }

    pub fn fault(self) -> Fault {
        let answer = |content_type, body: &[u8]| Fault::Answer {
            status: 200,
            content_type,
            body: body.to_vec(),
        };
        match self {
            Malformed::Garbage => answer(
                "application/json",
                &(0u16..600)
                    .map(|i| (i.wrapping_mul(7919) % 251) as u8 | 0x80)
                    .collect::<Vec<u8>>(),
            ),
            Malformed::Truncated => Fault::TruncateBody,
            Malformed::WrongContentType => Fault::Retype("text/html; charset=utf-8"),
            Malformed::HtmlPage => answer(
                "text/html; charset=utf-8",
                b"<!DOCTYPE html><html><head><title>Maintenance</title></head>\
                  <body><h1>We'll be back soon</h1><p>Scheduled maintenance.</p></body></html>",
            ),
            Malformed::InvalidXml => answer(
                "application/xml",
                b"<?xml version=\"1.0\"?><cas:serviceResponse \
                  xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess>\
                  <cas:user>alice</cas:usr></oops",
            ),
            Malformed::Empty => answer("application/json", b""),
            Malformed::UnexpectedJson => answer(
                "application/json",
                br#"{"status":"ok","data":[1,2,3],"message":"hello"}"#,
            ),
        }
    }
}

/// A running proxy. `url` is `http://127.0.0.1:PORT`.
pub struct FaultProxy {
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: Mutex<Option<String>>,
    fault: Mutex<Option<(String, Fault)>>,
    /// Requests for the sabotaged path since the fault was set.
    hits: AtomicUsize,
    client: reqwest::Client,
}

impl FaultProxy {
    /// Starts a proxy; it forwards to `upstream` (an origin such as `http://127.0.0.1:9400`),
    /// which may also be set later, before the first request.
    pub fn start(upstream: Option<&str>) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener
            .local_addr()
            .expect("proxy address")
            .port();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream.map(|u| u.trim_end_matches('/').to_string())),
            fault: Mutex::new(None),
            hits: AtomicUsize::new(0),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("proxy client"),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let for_server = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let data = web::Data::from(for_server);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            // Forwarded bodies (a SAML form, a token request) stay small, but
                            // never refuse what the real IdP would take.
                            .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                            .default_service(web::to(forward))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .listen(listener)
                    .expect("proxy listen")
                    .run();
                    let handle = server.handle();
                    let arbiter = actix_web::rt::System::current()
                        .arbiter()
                        .clone();
                    let stop: Box<dyn FnOnce() + Send> = Box::new(move || {
                        arbiter.spawn(async move {
                            handle.stop(false).await;
                        });
                    });
                    ready_tx
                        .send(stop)
                        .expect("report the proxy ready");
                    let _ = server.await;
                });
            })
            .expect("spawn the proxy thread");
        let stop = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the proxy started");
        FaultProxy {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn set_upstream(&self, upstream: &str) {
        *self
            .shared
            .upstream
            .lock()
            .expect("upstream lock") = Some(
            upstream
                .trim_end_matches('/')
                .to_string(),
        );
    }

    /// From now on, requests whose path is exactly `path` get `fault`; resets [`Self::hits`].
    pub fn set_fault(&self, path: &str, fault: Fault) {
        *self
            .shared
            .fault
            .lock()
            .expect("fault lock") = Some((path.to_string(), fault));
        self.shared
            .hits
            .store(0, Ordering::SeqCst);
    }

    /// Back to forwarding everything.
    pub fn clear_fault(&self) {
        *self
            .shared
            .fault
            .lock()
            .expect("fault lock") = None;
    }

    /// How many requests met the fault since it was set.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        if let Some(thread) = self.thread.take() {
            // The server stops at once (no graceful wait); never hang a test on it.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

async fn forward(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let fault = {
        let guard = shared.fault.lock().expect("fault lock");
        match guard.as_ref() {
            Some((path, fault)) if path == req.path() => Some(fault.clone()),
            _ => None,
        }
    };
    if fault.is_some() {
        shared
            .hits
            .fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(Fault::Answer {
            status,
            content_type,
            body,
        }) => {
            return HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status).expect("a valid status"),
            )
            .insert_header(("content-type", content_type))
            .body(body)
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }

    let Some(upstream) = shared
        .upstream
        .lock()
        .expect("upstream lock")
        .clone()
    else {
        return HttpResponse::ServiceUnavailable().body("fault proxy: no upstream yet");
    };
    let target = format!(
        "{upstream}{}",
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut request = shared
        .client
        .request(method, &target)
        .body(body.to_vec());
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) && name.as_str() != "content-length" {
            // `Host` goes through unchanged: the IdP builds its endpoint URLs from it, and they
            // must point back at the proxy.
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let upstream_answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return HttpResponse::BadGateway().body(format!("fault proxy: upstream failed: {e}"))
        }
    };

    let status = actix_web::http::StatusCode::from_u16(upstream_answer.status().as_u16())
        .expect("upstream status");
    let mut answer = HttpResponse::build(status);
    for (name, value) in upstream_answer.headers() {
        let name = name.as_str();
        if HOP_BY_HOP.contains(&name) || name == "content-length" {
            continue;
        }
        if name == "content-type" {
            if let Some(Fault::Retype(content_type)) = &fault {
                answer.insert_header(("content-type", *content_type));
                continue;
            }
        }
        answer.append_header((name, value.as_bytes()));
    }
    let mut bytes = upstream_answer
        .bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    if let Some(Fault::TruncateBody) = fault {
        bytes.truncate(bytes.len() / 2);
    }
    answer.body(bytes)
}

/// RFC 9110 section 7.6.1, plus `transfer-encoding` (the body is re-framed here).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
