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
    let app = TestApp::spawn_with(&[("LLMA_HTTP_HEADER_TIMEOUT_SECS", "2"), ("LLMA_MAX_CONNECTIONS", "500")]).await;
    let address = address(&app);

    let mut half_open = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&address)).await
        else {
            continue; // the listen backlog is full: the kernel sheds it for us
        };
        let _ = stream.write_all(b"GET /_health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        half_open.push(stream);
    }
    assert!(half_open.len() >= 1_000, "only {} connections opened", half_open.len());

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
