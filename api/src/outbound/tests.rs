//! Tests of the outbound client against small HTTP servers on loopback addresses.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What a test server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a test server answers one request.
enum Answer {
    /// Write these bytes and close.
    Close(Vec<u8>),
    /// Write these bytes (possibly none) and keep the connection open without a word more.
    Hang(Vec<u8>),
}

struct TestServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A one-request-per-connection HTTP/1.1 server on `ip`, answering with `answer`.
async fn serve<F>(ip: &str, answer: F) -> TestServer
where
    F: Fn(&Seen) -> Answer + Send + Sync + 'static,
{
    let listener = TcpListener::bind((ip, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let (task_connections, task_seen) = (Arc::clone(&connections), Arc::clone(&seen));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            task_connections.fetch_add(1, Ordering::SeqCst);
            let (answer, seen) = (Arc::clone(&answer), Arc::clone(&task_seen));
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                let reply = answer(&request);
                seen.lock().unwrap().push(request);
                match reply {
                    Answer::Close(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    Answer::Hang(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                }
            });
        }
    });
    TestServer {
        addr,
        connections,
        seen,
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(pos) = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            break pos + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..header_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

fn reply(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok(body: &[u8]) -> Answer {
    Answer::Close(reply("200 OK", &[], body))
}

fn redirect_to(location: &str) -> Answer {
    Answer::Close(reply("302 Found", &[("Location", location)], b""))
}

fn test_policy(allow_private_networks: bool) -> OutboundPolicy {
    OutboundPolicy {
        allow_private_networks,
        timeout: Duration::from_millis(300),
        max_response_bytes: 1000,
        max_redirects: 3,
        // The test servers speak plain http; the https rule has its own test.
        require_https: false,
    }
}

fn client(allow_private_networks: bool) -> OutboundClient {
    OutboundClient::new(test_policy(allow_private_networks)).unwrap()
}

/// Blocks every non-public address except 127.0.0.1, where the test servers listen, so that
/// the other loopback addresses (127.0.0.2 and up) can stand in for forbidden destinations.
fn client_allowing_only_127_0_0_1() -> OutboundClient {
    let filter = AddressFilter {
        allow_private_networks: false,
        exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    };
    OutboundClient::build(test_policy(false), filter).unwrap()
}

fn get(url: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
        cache: None,
    }
}

async fn fetch_error(client: &OutboundClient, request: HttpRequest) -> HttpError {
    match client.fetch(request).await {
        Ok(response) => panic!("expected an error, got status {}", response.status),
        Err(error) => error,
    }
}

#[tokio::test]
async fn loopback_is_blocked_unless_private_networks_are_allowed() {
    let server = serve("127.0.0.1", |_| ok(b"hello")).await;

    let error = fetch_error(&client(false), get(&server.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Blocked);
    assert_eq!(server.connections(), 0);

    let response = client(true)
        .fetch(get(&server.url("/")))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn localhost_name_is_blocked_after_resolution() {
    let server = serve("127.0.0.1", |_| ok(b"hello")).await;
    let url = format!("http://localhost:{}/", server.addr.port());
    let client = client(false);

    // No DNS at config time: a name passes the literal check...
    assert!(client.check_url_literal(&url).is_ok());
    // ...and is refused once resolved, before any connection.
    let error = fetch_error(&client, get(&url)).await;
    assert_eq!(error.kind, HttpErrorKind::Blocked);
    assert!(error.detail.contains("localhost"), "{}", error.detail);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn blocked_literals_are_refused_without_connecting() {
    // A connection attempt to most of these would end in Timeout or Connect, not Blocked.
    let urls = [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::a00:1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://0x7f.1/",
        "http://2130706433/",
        "https://100.64.0.1/",
        "https://192.168.1.1:8443/",
        "http://255.255.255.255/",
    ];
    let client = client(false);
    for url in urls {
        let started = Instant::now();
        let error = fetch_error(&client, get(url)).await;
        assert_eq!(error.kind, HttpErrorKind::Blocked, "{url}");
        assert!(started.elapsed() < Duration::from_millis(100), "{url}");
        let error = client
            .check_url_literal(url)
            .unwrap_err();
        assert_eq!(error.kind, HttpErrorKind::Blocked, "{url}");
    }

    // And a listening server at a blocked literal sees nothing.
    let hidden = serve("127.0.0.2", |_| ok(b"internal")).await;
    let client = client_allowing_only_127_0_0_1();
    let error = fetch_error(&client, get(&hidden.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Blocked);
    assert_eq!(hidden.connections(), 0);
}

#[tokio::test]
async fn public_literals_pass_the_literal_check() {
    let client = client(false);
    for url in [
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
        "https://[::ffff:8.8.8.8]/",
        "https://idp.example.com/.well-known/openid-configuration",
    ] {
        assert!(client.check_url_literal(url).is_ok(), "{url}");
    }
}

#[tokio::test]
async fn redirect_to_a_blocked_literal_is_refused() {
    let hidden = serve("127.0.0.2", |_| ok(b"internal")).await;
    let target = hidden.url("/secret");
    let front = serve("127.0.0.1", move |_| redirect_to(&target)).await;
    let client = client_allowing_only_127_0_0_1();

    let error = fetch_error(&client, get(&front.url("/start"))).await;
    assert_eq!(error.kind, HttpErrorKind::Blocked);
    assert!(error.detail.contains("127.0.0.2"), "{}", error.detail);
    assert_eq!(front.seen().len(), 1);
    assert_eq!(hidden.connections(), 0);

    let metadata = serve("127.0.0.1", |_| redirect_to("http://169.254.169.254/")).await;
    let error = fetch_error(&client, get(&metadata.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Blocked);
}

#[tokio::test]
async fn redirect_to_another_scheme_is_invalid() {
    let client = client(true);
    for location in ["ftp://127.0.0.1/file", "file:///etc/passwd", "gopher:x"] {
        let server = serve("127.0.0.1", move |_| redirect_to(location)).await;
        let error = fetch_error(&client, get(&server.url("/"))).await;
        assert_eq!(error.kind, HttpErrorKind::InvalidRequest, "{location}");
    }
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    // `/n` redirects to `/n+1` until `/stop`, which answers.
    let stop = Arc::new(AtomicUsize::new(usize::MAX));
    let server_stop = Arc::clone(&stop);
    let server = serve("127.0.0.1", move |seen| {
        let n: usize = seen
            .path
            .trim_start_matches('/')
            .parse()
            .unwrap_or(0);
        if n >= server_stop.load(Ordering::SeqCst) {
            ok(b"arrived")
        } else {
            redirect_to(&format!("/{}", n + 1))
        }
    })
    .await;
    let client = client(true);

    // Three redirects with a limit of three: followed.
    stop.store(3, Ordering::SeqCst);
    let response = client
        .fetch(get(&server.url("/0")))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"arrived");
    assert_eq!(server.seen().len(), 4);

    // Endless redirects: the fourth is refused, after four requests in all.
    stop.store(usize::MAX, Ordering::SeqCst);
    let error = fetch_error(&client, get(&server.url("/0"))).await;
    assert_eq!(error.kind, HttpErrorKind::Connect);
    assert!(error.detail.contains("redirects"), "{}", error.detail);
    assert_eq!(server.seen().len(), 8);
}

#[tokio::test]
async fn no_redirect_is_followed_with_a_limit_of_zero() {
    let server = serve("127.0.0.1", |_| redirect_to("/elsewhere")).await;
    let policy = OutboundPolicy {
        max_redirects: 0,
        ..test_policy(true)
    };
    let client = OutboundClient::new(policy).unwrap();

    let error = fetch_error(&client, get(&server.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Connect);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn body_at_the_cap_is_accepted_and_over_it_is_too_large() {
    let exact = serve("127.0.0.1", |_| ok(&[b'a'; 1000])).await;
    let over = serve("127.0.0.1", |_| ok(&[b'a'; 1001])).await;
    let client = client(true);

    let response = client
        .fetch(get(&exact.url("/")))
        .await
        .unwrap();
    assert_eq!(response.body.len(), 1000);
    let error = fetch_error(&client, get(&over.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::TooLarge);
}

#[tokio::test]
async fn announced_length_over_the_cap_is_refused_before_the_body() {
    // The body never comes: only an early refusal avoids the timeout.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n".to_vec();
    let server = serve("127.0.0.1", move |_| Answer::Hang(head.clone())).await;

    let started = Instant::now();
    let error = fetch_error(&client(true), get(&server.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::TooLarge);
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn chunked_body_over_the_cap_is_too_large() {
    let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        bytes.extend_from_slice(b"258\r\n");
        bytes.extend_from_slice(&[b'x'; 0x258]);
        bytes.extend_from_slice(b"\r\n");
    }
    // No terminating chunk: the client must stop on the cap, not on the end of the body.
    let server = serve("127.0.0.1", move |_| Answer::Hang(bytes.clone())).await;

    let error = fetch_error(&client(true), get(&server.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::TooLarge);
}

#[tokio::test]
async fn chunked_body_under_the_cap_is_read_whole() {
    let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                  5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        .to_vec();
    let server = serve("127.0.0.1", move |_| Answer::Close(bytes.clone())).await;

    let response = client(true)
        .fetch(get(&server.url("/")))
        .await
        .unwrap();
    assert_eq!(response.body, b"hello world");
}

#[tokio::test]
async fn silent_server_times_out() {
    let server = serve("127.0.0.1", |_| Answer::Hang(Vec::new())).await;

    let started = Instant::now();
    let error = fetch_error(&client(true), get(&server.url("/"))).await;
    let elapsed = started.elapsed();
    assert_eq!(error.kind, HttpErrorKind::Timeout);
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn stalled_body_times_out() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".to_vec();
    let server = serve("127.0.0.1", move |_| Answer::Hang(head.clone())).await;

    let started = Instant::now();
    let error = fetch_error(&client(true), get(&server.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn refused_connection_is_connect() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let error = fetch_error(&client(true), get(&format!("http://{addr}/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Connect);
}

#[tokio::test]
async fn other_schemes_are_invalid() {
    let client = client(true);
    for url in [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
    ] {
        let error = fetch_error(&client, get(url)).await;
        assert_eq!(error.kind, HttpErrorKind::InvalidRequest, "{url}");
        let error = client
            .check_url_literal(url)
            .unwrap_err();
        assert_eq!(error.kind, HttpErrorKind::InvalidRequest, "{url}");
    }
}

#[tokio::test]
async fn malformed_requests_are_invalid() {
    let server = serve("127.0.0.1", |_| ok(b"")).await;
    let client = client(true);

    for method in ["PUT", "DELETE", "HEAD", "get", "CONNECT"] {
        let request = HttpRequest {
            method: method.into(),
            ..get(&server.url("/"))
        };
        let error = fetch_error(&client, request).await;
        assert_eq!(error.kind, HttpErrorKind::InvalidRequest, "{method}");
    }
    let credentials = format!("http://user:pass@{}/", server.addr);
    for url in [credentials.as_str(), "not a url", "/relative"] {
        let error = fetch_error(&client, get(url)).await;
        assert_eq!(error.kind, HttpErrorKind::InvalidRequest, "{url}");
    }
    let request = HttpRequest {
        headers: vec![("X-Bad".into(), "line\r\nbreak".into())],
        ..get(&server.url("/"))
    };
    let error = fetch_error(&client, request).await;
    assert_eq!(error.kind, HttpErrorKind::InvalidRequest);
    assert!(!error.detail.contains("line"), "{}", error.detail);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn post_body_and_headers_arrive_intact() {
    let server = serve("127.0.0.1", |_| {
        Answer::Close(reply(
            "201 Created",
            &[("X-Answer", "yes"), ("Set-Cookie", "tracker=1")],
            b"{\"ok\":true}",
        ))
    })
    .await;
    let body = b"grant_type=authorization_code&code=abc%2F123".to_vec();
    let request = HttpRequest {
        method: "POST".into(),
        url: server.url("/token?x=1"),
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Authorization".into(), "Basic Y2xpZW50OnNlY3JldA==".into()),
            ("Accept".into(), "application/json".into()),
            ("Host".into(), "evil.example".into()),
            ("Cookie".into(), "session=stolen".into()),
            ("User-Agent".into(), "spoofed".into()),
            ("Connection".into(), "X-Hop".into()),
            ("X-Hop".into(), "hop-only".into()),
            ("Transfer-Encoding".into(), "chunked".into()),
        ],
        body: body.clone(),
        cache: None,
    };

    let response = client(true)
        .fetch(request)
        .await
        .unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.body, b"{\"ok\":true}");
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|(n, _)| n == name)
    };
    assert_eq!(header("x-answer").map(|(_, v)| v.as_str()), Some("yes"));
    assert!(header("set-cookie").is_none());

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/token?x=1");
    assert_eq!(seen.body, body);
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.header("authorization"),
        Some("Basic Y2xpZW50OnNlY3JldA==")
    );
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(
        seen.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(seen.header("host"), Some(server.addr.to_string().as_str()));
    assert_eq!(seen.header("user-agent"), Some(USER_AGENT));
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(seen.header("x-hop"), None);
    assert_eq!(seen.header("transfer-encoding"), None);
}

#[tokio::test]
async fn error_details_leave_out_query_strings() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let url = format!("http://{addr}/callback?code=SECRETCODE");
    let error = fetch_error(&client(true), get(&url)).await;
    assert!(!error.detail.contains("SECRETCODE"), "{}", error.detail);
    let error = fetch_error(&client(false), get(&url)).await;
    assert!(!error.detail.contains("SECRETCODE"), "{}", error.detail);
}

#[tokio::test]
async fn resolver_drops_blocked_answers() {
    let resolver = FilteringResolver {
        filter: Arc::new(AddressFilter {
            allow_private_networks: false,
            exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        }),
    };
    let name: Name = "localhost".parse().unwrap();
    let addrs: Vec<SocketAddr> = resolver
        .resolve(name)
        .await
        .unwrap()
        .collect();
    assert!(!addrs.is_empty());
    assert!(addrs
        .iter()
        .all(|a| a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)));

    let resolver = FilteringResolver {
        filter: Arc::new(AddressFilter {
            allow_private_networks: false,
            exempt: Vec::new(),
        }),
    };
    let name: Name = "localhost".parse().unwrap();
    let error = resolver
        .resolve(name)
        .await
        .err()
        .unwrap();
    let refusal = error.downcast_ref::<Refusal>().unwrap();
    assert_eq!(refusal.0.kind, HttpErrorKind::Blocked);
}

#[test]
fn zero_timeout_is_refused() {
    let policy = OutboundPolicy {
        timeout: Duration::ZERO,
        ..OutboundPolicy::default()
    };
    assert!(matches!(
        OutboundClient::new(policy),
        Err(OutboundError::InvalidPolicy(_))
    ));
}

#[test]
fn default_policy() {
    let policy = OutboundPolicy::default();
    assert!(!policy.allow_private_networks);
    assert_eq!(policy.timeout, Duration::from_secs(10));
    assert_eq!(policy.max_response_bytes, 1024 * 1024);
    assert_eq!(policy.max_redirects, 3);
}

#[tokio::test]
async fn plain_http_is_refused_when_https_is_required() {
    let server = serve("127.0.0.1", |_| ok(b"hello")).await;
    let policy = OutboundPolicy {
        allow_private_networks: true,
        ..test_policy(true)
    };
    let strict = OutboundClient::new(OutboundPolicy {
        require_https: true,
        ..policy
    })
    .unwrap();
    let error = strict.check_url_literal("http://idp.example.com/").unwrap_err();
    assert_eq!(error.kind, HttpErrorKind::Blocked);
    let error = fetch_error(&strict, get(&server.url("/"))).await;
    assert_eq!(error.kind, HttpErrorKind::Blocked);
    assert_eq!(server.connections(), 0);
    assert!(strict.check_url_literal("https://idp.example.com/").is_ok());
}
