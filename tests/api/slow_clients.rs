//! Issue 11: slow and idle clients cannot hold the server. Thousands of connections that
//! send half a request header are shed after the header timeout while `/_health` and real
//! requests keep being answered; an idle keep-alive connection is closed after the same
//! time; the number of open connections is capped.

use std::time::Duration;

use test_support::wait_until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const HALF_OPEN: usize = 2_000;
/// Descriptors kept for everything else the test process holds (its pools, the fakes).
const SPARE_DESCRIPTORS: u64 = 1_024;

/// This process's open-file limits (soft, hard), from `/proc/self/limits`.
fn open_file_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("an open-files line");
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let limit = |n: usize| numbers.get(n).copied().unwrap_or(u64::MAX);
    (limit(0), limit(1))
}

/// How many half-open connections this machine lets the test hold: the soft open-file
/// limit is raised first (towards the hard one) when it is too low for all of them; the
/// server, started afterwards, inherits it.
fn half_open_target() -> usize {
    let needed = HALF_OPEN as u64 + SPARE_DESCRIPTORS;
    let (soft, hard) = open_file_limits();
    if soft < needed {
        let raised = needed.min(hard);
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), &format!("--nofile={raised}:{hard}")])
            .status();
    }
    let (soft, _) = open_file_limits();
    let target = usize::try_from(soft.saturating_sub(SPARE_DESCRIPTORS)).unwrap_or(HALF_OPEN).min(HALF_OPEN);
    assert!(target > 600, "the open-file limit ({soft}) is too low to hold more connections than the cap of 500");
    target
}

fn address(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

/// Whether the server closed `stream` (EOF or a reset), waiting at most `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 written before closing
        }
    }
}

#[tokio::test]
async fn half_open_and_idle_connections_are_shed_while_real_requests_are_answered() {
    let target = half_open_target();
    let app = TestApp::spawn_with(&[("LLMA_HTTP_HEADER_TIMEOUT_SECS", "2"), ("LLMA_MAX_CONNECTIONS", "500")]).await;
    let address = address(&app);

    let mut half_open = Vec::with_capacity(target);
    for _ in 0..target {
        let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&address)).await
        else {
            continue; // the listen backlog is full: the kernel sheds it for us
        };
        let _ = stream.write_all(b"GET /_health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        half_open.push(stream);
    }
    assert!(half_open.len() >= target / 2, "only {} of {target} connections opened", half_open.len());

    // Real requests keep being answered while thousands of half-open connections are held.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let health = format!("{}/_health", app.base_url);
    let keys = app.llma("provider_keys/");
    wait_until(Duration::from_secs(60), || async { client.get(&health).send().await.is_ok_and(|r| r.status() == 200) })
        .await;
    wait_until(Duration::from_secs(60), || async {
        client
            .get(format!("{}{keys}", app.base_url))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // Every half-open connection is closed by the server, none of them ever answered.
    let mut shed = 0;
    for stream in &mut half_open {
        if closed_by_server(stream, Duration::from_secs(30)).await {
            shed += 1;
        }
    }
    assert_eq!(shed, half_open.len(), "every half-open connection is shed");

    // An idle keep-alive connection is closed after the same timeout.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(closed_by_server(&mut idle, Duration::from_secs(20)).await, "an idle keep-alive connection is closed");
    assert!(client.get(&health).send().await.is_ok_and(|r| r.status() == 200));
}
