//! A real SMTP server for tests: speaks enough ESMTP for a client (EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT), keeps every message, and refuses the recipients it is told to
//! (550), so a test can see per-recipient results.

use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section, dot-unstuffed.
    pub data: String,
}

impl ReceivedMail {
    /// A header's value (first match, case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }

    /// The decoded body of the first part with this content type (`text/html`,
    /// `text/plain`), whatever its transfer encoding.
    pub fn part(&self, content_type: &str) -> Option<String> {
        let needle = format!("content-type: {content_type}");
        let lower = self.data.to_ascii_lowercase();
        let start = lower.find(&needle)?;
        let headers_end = lower[start..].find("\r\n\r\n")? + start;
        let headers = &lower[start..headers_end];
        let body_start = headers_end + 4;
        let body_end = lower[body_start..].find("\r\n--").map_or(self.data.len(), |i| i + body_start);
        let body = &self.data[body_start..body_end];
        if headers.contains("content-transfer-encoding: base64") {
            let joined: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(joined).ok()?;
            return String::from_utf8(bytes).ok();
        }
        if headers.contains("content-transfer-encoding: quoted-printable") {
            return Some(decode_quoted_printable(body));
        }
        Some(body.to_owned())
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The running server.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts on a free local port; `refused` recipients get a 550 at RCPT.
    pub async fn start(refused: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let port = listener.local_addr().expect("local address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let refused: Arc<Vec<String>> = Arc::new(refused.iter().map(|r| r.to_ascii_lowercase()).collect());
        let kept = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, kept.clone(), refused.clone()));
            }
        });
        Self { port, mails, task }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().expect("mails lock").clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address(argument: &str) -> String {
    let inner = argument.split_once('<').map_or(argument, |(_, rest)| rest);
    inner.split('>').next().unwrap_or_default().trim().to_ascii_lowercase()
}

async fn session(stream: TcpStream, mails: Arc<Mutex<Vec<ReceivedMail>>>, refused: Arc<Vec<String>>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    if writer.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line[10..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let recipient = address(&line[8..]);
            if refused.contains(&recipient) {
                b"550 5.1.1 mailbox unavailable\r\n"
            } else {
                to.push(recipient);
                b"250 OK\r\n"
            }
        } else if upper.starts_with("DATA") {
            if writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(body_line)) = lines.next_line().await {
                if body_line == "." {
                    break;
                }
                data.push_str(
                    body_line.strip_prefix('.').filter(|_| body_line.starts_with("..")).unwrap_or(&body_line),
                );
                data.push_str("\r\n");
            }
            mails.lock().expect("mails lock").push(ReceivedMail { from: from.clone(), to: to.clone(), data });
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = writer.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 command not implemented\r\n"
        };
        if writer.write_all(reply).await.is_err() {
            return;
        }
    }
}
