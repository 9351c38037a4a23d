//! Memory and speed of the audit export through the real code path: a `gatehouse serve`
//! process (the binary of this package, release build) on a store holding a million audit
//! entries of one tenant, exported over HTTP as NDJSON and as CSV by
//! `GET /api/v1/tenants/{slug}/audit/export`. The body is read as a stream and only counted.
//!
//! Run:
//!   cargo bench -p gatehouse --bench audit_export
//!
//! A day of entries is exported first in each format (warm-up: the pool's connections and
//! their caches, allocator arenas). Before each export the server's peak resident set (`VmHWM` in `/proc/<pid>/status`) is
//! reset to its current size (writing `5` to `/proc/<pid>/clear_refs`, Linux 4.0 and later), so
//! the peak read afterwards is the highest the process reached during that export. Printed per
//! store and format: rows, bytes, seconds, rows per second, resident size before, peak during,
//! and the growth (peak minus before), which is the figure to keep to a few megabytes. Then
//! the time of one `GET .../audit/summary` over the same rows, by hour and by day.
//!
//! Knobs: `GATEHOUSE_BENCH_EXPORT_ROWS` (default 1,000,000); `GATEHOUSE_BENCH_STORES` (default
//! `sqlite,postgres`); `GATEHOUSE_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432`), on
//! which a database `gh_bench_<random>` is made and dropped. Needs `sqlite3` and `psql` to load
//! the rows (a recursive CTE and `generate_series`: seconds, where a million API calls would
//! take an hour).
//!
//! Measured on 2026-12-04 (2 cores, release build, other benchmarks running at the same time,
//! so the speeds are low bounds), growth after the warm-up: SQLite NDJSON 0.4 MiB (52,000
//! rows/s), CSV 1.4 MiB (41,000 rows/s); PostgreSQL NDJSON 0.3 MiB (173,000 rows/s), CSV
//! 0.1 MiB (173,000 rows/s); summaries over the million rows 0.6 to 1.0 s. Without the
//! warm-up the first export of a process grew it by 2.6 to 11.4 MiB (the pool's connections
//! and SQLite's page caches, bounded by the pool size, not by the rows).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;

const TENANT: &str = "bench-export";
const TOKEN: &str = "gh_bench_export_token_0123456789abcdef";

fn main() -> Result<()> {
    let rows: u64 = std::env::var("GATEHOUSE_BENCH_EXPORT_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let stores = std::env::var("GATEHOUSE_BENCH_STORES").unwrap_or("sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "{:<9} {:<7} {:>9} {:>12} {:>7} {:>9} {:>10} {:>10} {:>8}",
        "store", "format", "rows", "bytes", "secs", "rows/s", "rss MiB", "peak MiB", "growth"
    );
    for store in ["sqlite", "postgres"] {
        if !stores.contains(store) {
            continue;
        }
        let server = Server::start(store)?;
        runtime.block_on(server.prepare(rows))?;
        for format in ["ndjson", "csv"] {
            runtime.block_on(server.measure(format, rows))?;
        }
        runtime.block_on(server.summary())?;
    }
    Ok(())
}

/// A running `gatehouse serve` on a fresh store.
struct Server {
    child: Child,
    url: String,
    store: &'static str,
    data_dir: tempfile::TempDir,
    database: Option<(String, String)>,
}

impl Server {
    fn start(store: &'static str) -> Result<Server> {
        let data_dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .arg("serve")
            .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("GATEHOUSE_DATA_DIR", data_dir.path())
            .env("GATEHOUSE_ADMIN_TOKEN", TOKEN)
            .env(
                "GATEHOUSE_SECRET_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("GATEHOUSE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut database = None;
        if store == "postgres" {
            let server = std::env::var("GATEHOUSE_BENCH_PG")
                .unwrap_or("postgres://postgres@127.0.0.1:5432".into());
            let name = format!("gh_bench_{}", uuid::Uuid::new_v4().simple());
            psql(
                &format!("{server}/postgres"),
                &format!("CREATE DATABASE {name}"),
            )?;
            let url = format!("{server}/{name}");
            command.env("GATEHOUSE_DATABASE_URL", &url);
            database = Some((server, name));
        }
        let child = command
            .spawn()
            .context("start gatehouse serve")?;
        Ok(Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            store,
            data_dir,
            database,
        })
    }

    /// Waits for the server, creates the tenant and loads `rows` audit entries.
    async fn prepare(&self, rows: u64) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if Instant::now() > deadline {
                bail!("gatehouse did not start on {}", self.store);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = client
            .post(format!("{}/api/v1/tenants", self.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({
                "slug": TENANT, "display_name": "Bench", "app_url": "https://app.bench.test/"
            }))
            .send()
            .await?;
        if created.status() != 201 {
            bail!("creating the tenant: {}", created.status());
        }
        // Let the projector write the creation entry (position 1) before the bulk rows.
        tokio::time::sleep(Duration::from_secs(1)).await;

        let started = Instant::now();
        let values = "'bench:' || i, 'bench-export', 1767225600000 + i * 1000, \
             CASE WHEN i % 4 = 0 THEN 'login.failed' ELSE 'login.succeeded' END, 1 + i, \
             CASE WHEN i % 4 = 0 THEN 'failed' ELSE 'succeeded' END, \
             CASE WHEN i % 4 = 0 THEN 'state_mismatch' END, \
             CASE WHEN i % 4 = 0 THEN 'the state does not match this browser' END, \
             'person' || (i % 5000) || '@example.com', 'okta', 'oidc', \
             'attempt:' || i, 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0', \
             '198.51.100.' || (i % 250), 'a1b2c3d4-' || i, 'req-' || i";
        let columns = "event_key, tenant, time, type, position, outcome, reason, detail, email, \
             connection_id, protocol, actor, user_agent, client_ip, attempt_id, request_id";
        match &self.database {
            None => {
                let sql = format!(
                    "PRAGMA busy_timeout = 30000; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
                     SELECT i + 1 FROM n WHERE i < {rows}) INSERT INTO audit_log ({columns}) \
                     SELECT {values} FROM n;"
                );
                sqlite(
                    &self
                        .data_dir
                        .path()
                        .join("gatehouse.sqlite"),
                    &sql,
                )?;
            }
            Some((server, name)) => {
                let sql = format!(
                    "INSERT INTO audit_log ({columns}) SELECT {values} \
                     FROM generate_series(1, {rows}) AS i; ANALYZE audit_log;"
                );
                psql(&format!("{server}/{name}"), &sql)?;
            }
        }
        eprintln!(
            "{}: loaded {rows} rows in {:.1} s",
            self.store,
            started.elapsed().as_secs_f64()
        );
        // Warm up: the first export opens the pool's connections (each with its SQLite page
        // cache or PostgreSQL buffers) and sizes the allocator's arenas, once per process. A
        // day of entries (86,400, 87 batches) goes through every pooled connection.
        for format in ["ndjson", "csv"] {
            let day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
            self.export(format, Some(day)).await?;
        }
        Ok(())
    }

    /// Exports everything in `format` and prints the figures.
    async fn measure(&self, format: &str, rows: u64) -> Result<()> {
        let pid = self.child.id();
        fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .context("reset the peak resident size (clear_refs)")?;
        let before = status_kib(pid, "VmRSS")?;
        let started = Instant::now();
        let (lines, bytes) = self.export(format, None).await?;
        let secs = started.elapsed().as_secs_f64();
        let peak = status_kib(pid, "VmHWM")?;
        let exported = if format == "csv" { lines - 1 } else { lines };
        if exported != rows + 1 {
            bail!(
                "{format} export of {} gave {exported} rows, expected {}",
                self.store,
                rows + 1
            );
        }
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "{:<9} {:<7} {:>9} {:>12} {:>7.2} {:>9.0} {:>10.1} {:>10.1} {:>7.1}M",
            self.store,
            format,
            exported,
            bytes,
            secs,
            exported as f64 / secs,
            mib(before),
            mib(peak),
            mib(peak.saturating_sub(before)),
        );
        Ok(())
    }

    /// Times `GET .../audit/summary` over every loaded row, by hour and by day (best of 3).
    async fn summary(&self) -> Result<()> {
        let client = reqwest::Client::new();
        for bucket in ["hour", "day"] {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let url = format!(
                    "{}/api/v1/tenants/{TENANT}/audit/summary?bucket={bucket}\
                     &from=2026-01-01T00:00:00Z&to=2026-01-30T00:00:00Z",
                    self.url
                );
                let started = Instant::now();
                let response = client
                    .get(&url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("summary: {} {}", response.status(), response.text().await?);
                }
                let body: serde_json::Value = response.json().await?;
                best = best.min(started.elapsed().as_secs_f64());
                if body["totals"]["total"]
                    .as_u64()
                    .unwrap_or(0)
                    == 0
                {
                    bail!("the summary counted nothing: {body}");
                }
            }
            println!(
                "{:<9} summary by {bucket}, 29 days of entries: {:.0} ms",
                self.store,
                best * 1000.0
            );
        }
        Ok(())
    }

    /// Reads one export as a stream: (newlines, bytes).
    async fn export(&self, format: &str, filter: Option<&str>) -> Result<(u64, u64)> {
        let mut url = format!(
            "{}/api/v1/tenants/{TENANT}/audit/export?format={format}",
            self.url
        );
        if let Some(filter) = filter {
            url.push('&');
            url.push_str(filter);
        }
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("export: {} {}", response.status(), response.text().await?);
        }
        let mut body = response.bytes_stream();
        let (mut lines, mut bytes) = (0u64, 0u64);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            lines += chunk
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
        }
        Ok((lines, bytes))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((server, name)) = &self.database {
            let _ = psql(
                &format!("{server}/postgres"),
                &format!("DROP DATABASE {name}"),
            );
        }
    }
}

/// A line of `/proc/<pid>/status` in KiB.
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}:")))
        .and_then(|v| {
            v.trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn sqlite(path: &Path, sql: &str) -> Result<()> {
    let output = Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()?;
    if !output.status.success() {
        bail!("sqlite3: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()?;
    if !output.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}
