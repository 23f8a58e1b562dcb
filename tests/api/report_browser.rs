//! Spec section 7 in a real browser: the run page and the e-mail's HTML rendered by
//! headless Chromium (Debian's package, which `cargo xtask test` installs), screenshots
//! written to `target/screenshots/`, and proof that a `<script>` the LLM wrote never
//! runs (Chromium dumps the DOM after scripts would have run).

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use test_support::SmtpSink;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::{create_evaluation, create_key, evaluation_body, id_of};
use crate::helpers::*;
use crate::ingestion::{capture, sdk_event, target_dir};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(args: &[String]) -> String {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run the tests with `cargo xtask test` (it installs Debian's chromium) or `apt-get install chromium`"
    );
    let profile = target_dir().join(format!("chromium-profile-{}", uuid::Uuid::now_v7()));
    let mut command = Command::new(CHROMIUM);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        &format!("--user-data-dir={}", profile.display()),
    ]);
    command.args(args);
    let output = command.output().expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Failures out of 4 per hour, `hours_ago` back: fine yesterday, worse overnight.
fn failing(hours_ago: i64) -> i64 {
    match hours_ago {
        0..=5 => 2,
        6..=11 => 3,
        12..=23 => 1,
        _ => hours_ago % 2,
    }
}

fn screenshots() -> PathBuf {
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_run_page_and_the_email_render_in_chromium_and_llm_script_never_runs() {
    let smtp = SmtpSink::start(&[]).await;
    let app = TestApp::spawn_with(&[("LLMA_SMTP_URL", &smtp.url()), ("LLMA_SCHEDULER_INTERVAL_SECS", "0")]).await;
    let key = create_key(&app, "openai", "Reports key").await;
    let mut body = evaluation_body("Answer politeness");
    body["model_configuration"] = json!({"provider": "openai", "model": "gpt-5-mini", "provider_key_id": key});
    let evaluation = id_of(&create_evaluation(&app, body).await);
    let mut events = Vec::new();
    let now = chrono::Utc::now();
    for hour in 0..36 {
        for n in 0..4 {
            let mut event = sdk_event(
                "$ai_evaluation",
                json!({"$ai_evaluation_id": evaluation, "$ai_target_event_id": uuid::Uuid::now_v7().to_string(),
                       "$ai_evaluation_result": n >= failing(hour), "$ai_evaluation_applicable": true,
                       "$ai_evaluation_reasoning": "The answer was curt."}),
            );
            event["timestamp"] = json!((now - chrono::Duration::minutes(hour * 60 + n * 7 + 1)).to_rfc3339());
            events.push(event);
        }
    }
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": events})).await.expect(200);
    let hostile = "Answers turned curt after the prompt change. <script>document.title='PWNED'</script>\n\n\
        <img src=x onerror=\"document.title='PWNED'\">\n\n- **Fix**: restore the greeting line\n- Re-run the \
        [failing cases](javascript:document.title='PWNED')";
    let draft = json!({
        "title": "Politeness dipped overnight",
        "sections": [{"title": "What happened", "content": hostile}, {"title": "Next steps", "content": "1. Restore the greeting\n2. Watch the trend"}],
        "citations": []
    });
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .and(body_string_contains("evaluation_report"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": draft.to_string()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}
        })))
        .mount(&app.providers)
        .await;
    let report = app
        .post(
            &app.llma("evaluation_reports/"),
            json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=DAILY;BYHOUR=8",
                   "starts_at": "2026-01-01T00:00:00Z", "delivery_targets": [{"type": "email", "value": "team@example.com"}]}),
        )
        .await
        .expect(201)
        .json();
    let id = id_of(&report);
    let runs_path = app.llma(&format!("evaluation_reports/{id}/runs/"));
    app.request(Method::POST, &app.llma(&format!("evaluation_reports/{id}/generate/")), Some(&app.admin_key), None)
        .await
        .expect(202);
    test_support::wait_until(std::time::Duration::from_secs(60), || async {
        app.get(&runs_path).await.json()["results"][0]["delivery_status"] == "delivered"
    })
    .await;
    let run = app.get(&runs_path).await.json()["results"][0].clone();
    let share_url = run["share_url"].as_str().unwrap().to_owned();

    // The page: after Chromium ran it, the title is the report's and no script exists.
    let dom = chromium(&["--dump-dom".into(), share_url.clone()]);
    assert!(dom.contains("<title>Answer politeness: Politeness dipped overnight</title>"), "{dom}");
    assert!(!dom.contains("<title>PWNED"), "an LLM-written script ran: {dom}");
    assert!(!dom.contains("<script") && !dom.contains("<img"), "{dom}");
    assert!(dom.contains("&lt;script&gt;document.title='PWNED'&lt;/script&gt;"), "shown as text: {dom}");
    assert!(dom.contains("<svg"), "the trend chart is drawn: {dom}");
    let page_png = screenshots().join("report-run-page.png");
    chromium(&[format!("--screenshot={}", page_png.display()), "--window-size=900,1500".into(), share_url]);
    assert!(std::fs::metadata(&page_png).unwrap().len() > 10_000, "a real picture");

    // The e-mail's HTML, as a mail client would show it.
    let html = smtp.mails()[0].part("text/html").unwrap();
    let email_file = screenshots().join("report-email.html");
    std::fs::write(&email_file, &html).unwrap();
    let email_url = format!("file://{}", email_file.display());
    let dom = chromium(&["--dump-dom".into(), email_url.clone()]);
    assert!(!dom.contains("PWNED</title>") && !dom.contains("<script"), "{dom}");
    let email_png = screenshots().join("report-email.png");
    chromium(&[format!("--screenshot={}", email_png.display()), "--window-size=800,1300".into(), email_url]);
    assert!(std::fs::metadata(&email_png).unwrap().len() > 10_000);
}
