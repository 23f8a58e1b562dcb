//! The harness: spawns the real binary against a fresh database and fake providers.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::TestDatabase;
use wiremock::MockServer;

pub const BINARY: &str = env!("CARGO_BIN_EXE_llm-analytics");

/// Path prefixes under which the fake provider server plays each provider.
pub const PROVIDER_PREFIXES: [(&str, &str); 6] = [
    ("LLMA_OPENAI_BASE_URL", "/openai/v1"),
    ("LLMA_ANTHROPIC_BASE_URL", "/anthropic/v1"),
    ("LLMA_GEMINI_BASE_URL", "/gemini/v1beta"),
    ("LLMA_OPENROUTER_BASE_URL", "/openrouter/api/v1"),
    ("LLMA_FIREWORKS_BASE_URL", "/fireworks/inference/v1"),
    ("LLMA_TOGETHER_AI_BASE_URL", "/together/v1"),
];

/// The fake-server path prefix of a provider's API (azure: the endpoint path).
pub fn prefix(provider: &str) -> &'static str {
    match provider {
        "openai" => "/openai/v1",
        "anthropic" => "/anthropic/v1",
        "gemini" => "/gemini/v1beta",
        "openrouter" => "/openrouter/api/v1",
        "fireworks" => "/fireworks/inference/v1",
        "together_ai" => "/together/v1",
        "azure_openai" => "/azure",
        other => panic!("no fake prefix for {other}"),
    }
}

/// A response from the API.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    /// The `id` of the JSON body.
    pub fn id(&self) -> String {
        let body = self.json();
        body["id"].as_str().unwrap_or_else(|| panic!("no id in {body}")).to_owned()
    }

    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        self
    }
}

/// A running server with its own database, a project, an admin and their `*` key.
pub struct TestApp {
    pub db: TestDatabase,
    pub providers: MockServer,
    pub base_url: String,
    pub project: i64,
    pub project_token: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    /// `GET /metrics` of the server (on its own port).
    pub metrics_url: Option<String>,
    env: Vec<(String, String)>,
    /// Arguments after `serve` (e.g. `--api-only`).
    serve_args: Vec<String>,
    child: Option<Child>,
    logs: Arc<Mutex<String>>,
}

fn encryption_key() -> String {
    let bytes: [u8; 32] = rand_bytes();
    format!("test1:{}", base64_encode(&bytes))
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    let a = uuid::Uuid::new_v4().into_bytes();
    let b = uuid::Uuid::new_v4().into_bytes();
    out[..16].copy_from_slice(&a);
    out[16..].copy_from_slice(&b);
    out
}

/// Standard base64 with padding (tests only; avoids a dependency).
pub fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh encryption key entry `id:base64`.
pub fn new_encryption_key(id: &str) -> String {
    encryption_key().replacen("test1", id, 1)
}

impl TestApp {
    /// A server on a fresh database with fake providers and private endpoints allowed.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// As `spawn_with`, serving only the API: jobs are queued but judged by replicas.
    pub async fn spawn_api_only(extra_env: &[(&str, &str)]) -> Self {
        Self::spawn_serving(extra_env, &["--api-only"]).await
    }

    /// As `spawn`, with extra environment variables.
    pub async fn spawn_with(extra_env: &[(&str, &str)]) -> Self {
        Self::spawn_serving(extra_env, &[]).await
    }

    async fn spawn_serving(extra_env: &[(&str, &str)], serve_args: &[&str]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDatabase::create().await;
        let providers = MockServer::start().await;
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), db.url.clone()),
            ("LLMA_ENCRYPTION_KEYS".into(), encryption_key()),
            ("LLMA_BIND".into(), "127.0.0.1:0".into()),
            ("LLMA_ALLOW_PRIVATE_ENDPOINTS".into(), "true".into()),
            ("LLMA_METRICS_BIND".into(), "127.0.0.1:0".into()),
            ("RUST_LOG".into(), "debug,sqlx=warn,hyper=info,h2=info,rustls=info,reqwest=info".into()),
        ];
        for (variable, path) in PROVIDER_PREFIXES {
            env.push((variable.into(), format!("{}{path}", providers.uri())));
        }
        for (key, value) in extra_env {
            env.retain(|(k, _)| k != key);
            env.push(((*key).into(), (*value).into()));
        }
        let mut app = Self {
            db,
            providers,
            base_url: String::new(),
            project: 0,
            project_token: String::new(),
            admin_key: String::new(),
            // Idle connections are dropped before the server's keep-alive timeout (10 s) can
            // close one as a request goes out on it.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            metrics_url: None,
            env,
            serve_args: Vec::new(),
            child: None,
            logs: Arc::new(Mutex::new(String::new())),
        };
        let project = app.cli(&["admin", "create-project", "--name", "Test project"]);
        app.project = project["id"].as_i64().unwrap();
        app.project_token = project["api_token"].as_str().unwrap().to_owned();
        app.admin_key = app.user_with_key("admin@example.com", Some((app.project, "admin")), "*", None);
        app.serve_args = serve_args.iter().map(|a| (*a).to_owned()).collect();
        app.start();
        app
    }

    /// The environment the binary runs with.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets an environment variable for the next CLI run or restart.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs a CLI command; returns its exit code, stdout and stderr.
    pub fn cli_raw(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.command().args(args).output().expect("run llm-analytics");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        self.logs.lock().unwrap().push_str(&stderr);
        (output.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// Runs a CLI command that must succeed and print one JSON object.
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> Value {
        let (code, stdout, stderr) = self.cli_raw(args);
        assert_eq!(code, 0, "llm-analytics {args:?} failed: {stderr}");
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stdout}"))
    }

    /// Creates a user (with an optional membership) and a personal API key; returns the key.
    pub fn user_with_key(
        &self,
        email: &str,
        membership: Option<(i64, &str)>,
        scopes: &str,
        projects: Option<&str>,
    ) -> String {
        let project = membership.map(|(p, _)| p.to_string());
        let mut args = vec!["admin", "create-user", "--email", email];
        if let (Some(project), Some((_, level))) = (project.as_deref(), membership) {
            args.extend(["--project", project, "--level", level]);
        }
        self.cli(&args);
        let mut args = vec!["admin", "create-api-key", "--email", email, "--scopes", scopes];
        if let Some(projects) = projects {
            args.extend(["--projects", projects]);
        }
        self.cli(&args)["key"].as_str().unwrap().to_owned()
    }

    /// Starts `serve <args>` and waits until it says it is up; returns the process and
    /// the API's address (`None` for a worker-only process). Its logs join this app's.
    fn spawn_serve(&self, args: &[String]) -> (Child, Option<String>, Option<String>) {
        let mut child = self
            .command()
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn llm-analytics serve");
        let stderr = child.stderr.take().unwrap();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                logs.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut metrics_url = None;
        let base_url = loop {
            line.clear();
            if stdout.read_line(&mut line).expect("read server stdout") == 0 {
                let status = child.wait().ok();
                panic!("server exited before starting ({status:?}); logs:\n{}", self.logs());
            }
            if let Some(address) = line.trim().strip_prefix("llm-analytics listening on ") {
                break Some(address.to_owned());
            }
            if let Some(url) = line.trim().strip_prefix("llm-analytics metrics on ") {
                metrics_url = Some(url.to_owned());
            }
            if line.starts_with("llm-analytics worker running") {
                break None;
            }
        };
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            logs.lock().unwrap().push_str(&rest);
        });
        (child, base_url, metrics_url)
    }

    /// Another process of the service on the same database and configuration (a
    /// replica): `serve` with `args` (e.g. `--worker-only`).
    pub fn spawn_replica(&self, args: &[&str]) -> Replica {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, base_url, _) = self.spawn_serve(&args);
        Replica { child: Some(child), base_url }
    }

    /// Starts the server and waits for its "listening" line.
    pub fn start(&mut self) {
        let (child, base_url, metrics_url) = self.spawn_serve(&self.serve_args);
        self.base_url = base_url.expect("the test server serves the API");
        self.metrics_url = metrics_url;
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        child.wait().expect("wait for server")
    }

    /// Stops and starts the server on the same database.
    pub fn restart(&mut self) {
        let status = self.terminate();
        assert!(status.success(), "server exited with {status}");
        self.start();
    }

    /// Everything the server and CLI runs logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// `/api/environments/{project}/llm_analytics/{path}`.
    pub fn llma(&self, path: &str) -> String {
        format!("/api/environments/{}/llm_analytics/{path}", self.project)
    }

    /// A request with an optional bearer and JSON body.
    pub async fn request(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base_url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the server");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap_or_default(),
        }
    }

    /// GET as an agent tool of the reference does it (`X-PostHog-Client: <client>`), with the
    /// admin key; the answer must be 200 and is returned as JSON.
    pub async fn get_as_client(&self, path: &str, client: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.admin_key)
            .header("X-PostHog-Client", client)
            .send()
            .await
            .expect("request reaches the server");
        assert_eq!(response.status(), 200, "GET {path} as {client}");
        response.json().await.expect("a JSON answer")
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, Some(&self.admin_key.clone()), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(&self.admin_key.clone()), Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(&self.admin_key.clone()), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.request(Method::PUT, path, Some(&self.admin_key.clone()), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, Some(&self.admin_key.clone()), None).await
    }

    /// Stores an OpenAI key that the fake provider accepts; returns its JSON.
    pub async fn create_openai_key(&self, name: &str, api_key: &str) -> Value {
        crate::helpers::fake::accept_models(&self.providers, "openai").await;
        self.post(&self.llma("provider_keys/"), json!({"provider": "openai", "name": name, "api_key": api_key}))
            .await
            .expect(201)
            .json()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A replica process; killed (SIGKILL) when dropped.
pub struct Replica {
    child: Option<Child>,
    /// Where it serves the API (`None` for a worker-only process).
    pub base_url: Option<String>,
}

impl Replica {
    /// Kills the process at once (SIGKILL: no shutdown, leases left to lapse).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("replica running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill -TERM");
        child.wait().expect("wait for replica")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Fake provider responses in each provider's wire format.
pub mod fake {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::prefix;

    /// The key-check path of a provider under the fake server.
    pub fn check_path(provider: &str) -> String {
        match provider {
            "openrouter" => format!("{}/key", prefix(provider)),
            "azure_openai" => format!("{}/openai/models", prefix(provider)),
            other => format!("{}/models", prefix(other)),
        }
    }

    /// A realistic 200 body of the key-check call.
    pub fn ok_body(provider: &str) -> serde_json::Value {
        match provider {
            "gemini" => json!({"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/gemini-2.5-pro"}]}),
            "together_ai" => json!([{"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "created": 1700000000}]),
            "openrouter" => json!({"data": {"label": "sk-or-v1-abc", "usage": 0, "limit": null}}),
            "anthropic" => {
                json!({"data": [{"id": "claude-haiku-4-5", "type": "model", "created_at": "2025-10-01T00:00:00Z"}], "has_more": false})
            }
            _ => json!({"object": "list", "data": [{"id": "gpt-5-mini", "object": "model", "created": 1700000000}]}),
        }
    }

    /// The provider accepts every key.
    pub async fn accept_models(server: &MockServer, provider: &str) {
        Mock::given(method("GET"))
            .and(path(check_path(provider)))
            .respond_with(ResponseTemplate::new(200).set_body_json(ok_body(provider)))
            .mount(server)
            .await;
    }

    /// The provider answers `status` with a JSON error.
    pub async fn answer_status(server: &MockServer, provider: &str, status: u16) {
        Mock::given(method("GET"))
            .and(path(check_path(provider)))
            .respond_with(ResponseTemplate::new(status).set_body_json(
                json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}),
            ))
            .mount(server)
            .await;
    }

    /// The path of a provider's model list under the fake server (azure: the deployments).
    pub fn models_path(provider: &str) -> String {
        match provider {
            "azure_openai" => format!("{}/openai/deployments", prefix(provider)),
            other => format!("{}/models", prefix(other)),
        }
    }

    /// The fake answers `GET path` with `status` and the JSON `body`.
    pub async fn answer_json(server: &MockServer, path_: &str, status: u16, body: serde_json::Value) {
        Mock::given(method("GET"))
            .and(path(path_))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(server)
            .await;
    }

    /// The provider answers its model list with `body`. For openai, anthropic, gemini,
    /// fireworks and together_ai this is also the key-check call, so keys are accepted.
    pub async fn serve_models(server: &MockServer, provider: &str, body: serde_json::Value) {
        answer_json(server, &models_path(provider), 200, body).await;
    }

    /// Gemini's answer to a bad key: 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
    pub fn gemini_bad_key_body() -> serde_json::Value {
        json!({"error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                         "domain": "googleapis.com"}]
        }})
    }

    /// The requests the fake server received on `path` (any method, any query).
    pub async fn requests_to(server: &MockServer, path_: &str) -> Vec<wiremock::Request> {
        server.received_requests().await.unwrap_or_default().into_iter().filter(|r| r.url.path() == path_).collect()
    }

    /// Every request the fake server received.
    pub async fn all_requests(server: &MockServer) -> Vec<wiremock::Request> {
        server.received_requests().await.unwrap_or_default()
    }
}
