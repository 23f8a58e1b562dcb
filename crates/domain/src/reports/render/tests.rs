use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::reports::model::{Citation, DeliveryStatus, Period, ReportContent, Section};
use crate::{ProjectId, ReportId, ReportRunId};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

const HOSTILE: &str = "Users said <script>alert('x')</script> and <img src=x onerror=alert(1)>; \
see [here](javascript:alert(2)) or [docs](https://docs.example/a).";

fn run() -> ReportRun {
    let period = Period { start: at("2026-06-01T00:00:00Z"), end: at("2026-06-02T00:00:00Z") };
    ReportRun {
        id: ReportRunId(uuid::Uuid::from_u128(7)),
        project: ProjectId(1),
        report: ReportId(uuid::Uuid::from_u128(8)),
        content: ReportContent {
            title: "<b>Pass rate</b> fell".into(),
            sections: vec![
                Section { title: "Why <i>".into(), content: HOSTILE.into() },
                Section { title: "Next".into(), content: "- fix prompts\n- **retry**".into() },
            ],
            citations: vec![Citation {
                generation_id: "g<1>".into(),
                trace_id: "t1".into(),
                reason: "<script>bad()</script>".into(),
            }],
            metrics: ReportMetrics {
                total_runs: 12,
                pass_count: 6,
                fail_count: 4,
                na_count: 2,
                pass_rate: 60.0,
                period_start: period.start,
                period_end: period.end,
                previous_total_runs: 10,
                previous_pass_rate: 75.0,
            },
        },
        metadata: json!({"trigger": "scheduled"}),
        period,
        delivery_status: DeliveryStatus::Pending,
        delivery_errors: vec![],
        trend: vec![],
        created_at: period.end,
    }
}

fn view(run: &ReportRun) -> RunView<'_> {
    RunView { evaluation_name: "Tone & <style>", run, share_url: "https://llma.example/reports/runs/1?x=1&y=2" }
}

#[test]
fn llm_text_never_becomes_markup_in_the_email_or_the_page() {
    let run = run();
    for html in [email_html(view(&run)), page_html(view(&run), &[])] {
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<b>Pass"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains(r#"<a href="https://docs.example/a">docs</a>"#), "{html}");
        assert!(html.contains("Tone &amp; &lt;style&gt;"), "{html}");
    }
}

#[test]
fn the_email_has_the_metrics_with_changes_and_the_link() {
    let run = run();
    let html = email_html(view(&run));
    assert!(html.contains("60.00%") && html.contains("75.00%"), "{html}");
    assert!(html.contains("▼ 15.00 pts"), "{html}");
    assert!(html.contains("▲ 2"), "{html}");
    assert!(html.contains("View the full report"));
    assert!(html.contains("https://llma.example/reports/runs/1?x=1&amp;y=2"));
    let text = plain_text(view(&run));
    assert!(text.contains("Pass rate: 60.00% (previous 75.00%, ▼ 15.00 pts)"), "{text}");
    assert!(text.ends_with("View the full report: https://llma.example/reports/runs/1?x=1&y=2\n"));
    assert_eq!(subject(view(&run)), "Tone & <style>: <b>Pass rate</b> fell");
}

#[test]
fn the_page_has_the_chart_and_no_script() {
    let run = run();
    let trend = vec![TrendPoint { bucket: at("2026-06-01T03:00:00Z"), pass: 2, fail: 1 }];
    let html = page_html(view(&run), &trend);
    assert!(html.contains("<svg"), "{html}");
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http"));
}

#[test]
fn slack_escapes_and_splits_long_sections() {
    let mut run = run();
    let text = slack_message(view(&run)).to_string();
    assert!(!text.contains("<script"), "{text}");
    assert!(text.contains("&lt;script&gt;"), "{text}");
    assert!(!text.contains("javascript"), "{text}");
    assert!(text.contains("<https://llma.example/reports/runs/1?x=1&y=2|View the full report>"), "{text}");
    run.content.sections[0].content = "word ".repeat(2_000);
    let message = slack_message(view(&run));
    let blocks = message["blocks"].as_array().unwrap();
    assert!(blocks.len() >= 7, "{}", blocks.len());
    for block in blocks {
        if let Some(text) = block["text"]["text"].as_str() {
            assert!(text.chars().count() <= SLACK_SECTION_LIMIT);
        }
    }
}

#[test]
fn split_text_respects_the_limit() {
    let pieces = split_text(&format!("{}\n{}", "a".repeat(10), "b".repeat(25)), 12);
    assert!(pieces.iter().all(|p| p.chars().count() <= 12), "{pieces:?}");
    assert_eq!(pieces.concat(), format!("{}\n{}", "a".repeat(10), "b".repeat(25)));
}
