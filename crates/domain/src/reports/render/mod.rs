//! One run, every rendering: the e-mail (HTML and plain text), the run page, the Slack
//! message and the webhook body. Content came from an LLM that read users' text, so
//! every path escapes it (maud escapes by default; markdown goes through
//! `markdown::to_safe_html`).

pub mod chart;
pub mod markdown;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Value, json};

use super::model::{ReportMetrics, ReportRun, TrendPoint};

/// Slack's limit for one section block's text.
pub const SLACK_SECTION_LIMIT: usize = 3_000;
/// Blocks per Slack message.
pub const SLACK_MAX_BLOCKS: usize = 50;

/// What every rendering needs.
#[derive(Debug, Clone, Copy)]
pub struct RunView<'a> {
    pub evaluation_name: &'a str,
    pub run: &'a ReportRun,
    /// The run page's signed link.
    pub share_url: &'a str,
}

/// A run rendered for every channel.
#[derive(Debug, Clone)]
pub struct RenderedRun {
    pub subject: String,
    pub html: String,
    pub text: String,
    pub slack: Value,
    pub webhook: Value,
}

/// Renders a run for delivery.
pub fn render(view: RunView<'_>) -> RenderedRun {
    RenderedRun {
        subject: subject(view),
        html: email_html(view),
        text: plain_text(view),
        slack: slack_message(view),
        webhook: webhook_body(view),
    }
}

/// "<evaluation>: <title>", on one line.
pub fn subject(view: RunView<'_>) -> String {
    let raw = format!("{}: {}", view.evaluation_name, view.run.content.title);
    raw.chars().map(|c| if c.is_control() { ' ' } else { c }).take(250).collect()
}

fn period_text(metrics: &ReportMetrics) -> String {
    format!(
        "{} – {}",
        metrics.period_start.format("%Y-%m-%d %H:%M UTC"),
        metrics.period_end.format("%Y-%m-%d %H:%M UTC")
    )
}

/// "▲ 3" / "▼ 2.50" / "–".
fn change(current: f64, previous: f64, decimals: usize, unit: &str) -> String {
    let delta = current - previous;
    if delta.abs() < 0.005 {
        return "–".into();
    }
    let arrow = if delta > 0.0 { "▲" } else { "▼" };
    format!("{arrow} {:.*}{unit}", decimals, delta.abs())
}

fn metrics_table(metrics: &ReportMetrics) -> Markup {
    #[allow(clippy::cast_precision_loss)]
    let (total, previous_total) = (metrics.total_runs as f64, metrics.previous_total_runs as f64);
    html! {
        table class="metrics" cellpadding="6" cellspacing="0" {
            thead { tr { th align="left" { "Metric" } th align="right" { "This period" } th align="right" { "Previous" } th align="right" { "Change" } } }
            tbody {
                tr { td { "Pass rate" } td align="right" { (format!("{:.2}%", metrics.pass_rate)) }
                     td align="right" { (format!("{:.2}%", metrics.previous_pass_rate)) }
                     td align="right" { (change(metrics.pass_rate, metrics.previous_pass_rate, 2, " pts")) } }
                tr { td { "Runs" } td align="right" { (metrics.total_runs) } td align="right" { (metrics.previous_total_runs) }
                     td align="right" { (change(total, previous_total, 0, "")) } }
                tr { td { "Passed" } td align="right" { (metrics.pass_count) } td {} td {} }
                tr { td { "Failed" } td align="right" { (metrics.fail_count) } td {} td {} }
                tr { td { "Not applicable" } td align="right" { (metrics.na_count) } td {} td {} }
            }
        }
    }
}

const STYLE: &str = "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#111827;max-width:760px;\
margin:0 auto;padding:24px;line-height:1.5}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}\
.muted{color:#6b7280;font-size:13px}.metrics{border-collapse:collapse;width:100%;font-size:14px}\
.metrics th,.metrics td{border-bottom:1px solid #e5e7eb}.metrics th{background:#f9fafb}\
.section{margin-top:8px}.citations li{margin-bottom:6px}code{background:#f3f4f6;padding:1px 4px;border-radius:3px}\
.legend{font-size:12px;color:#6b7280}.button{display:inline-block;margin-top:20px;padding:10px 16px;background:#2563eb;\
color:#fff;text-decoration:none;border-radius:6px}";

fn report_body(view: RunView<'_>) -> Markup {
    let content = &view.run.content;
    html! {
        h1 { (content.title) }
        p class="muted" { (view.evaluation_name) " · " (period_text(&content.metrics)) }
        (metrics_table(&content.metrics))
        @for section in &content.sections {
            h2 { (section.title) }
            div class="section" { (PreEscaped(markdown::to_safe_html(&section.content))) }
        }
        @if !content.citations.is_empty() {
            h2 { "Cited generations" }
            ul class="citations" {
                @for citation in &content.citations {
                    li { code { (citation.generation_id) }
                         @if !citation.trace_id.is_empty() { " (trace " code { (citation.trace_id) } ")" }
                         " — " (citation.reason) }
                }
            }
        }
    }
}

/// The e-mail's HTML part; ends with the link to the run page.
pub fn email_html(view: RunView<'_>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (subject(view)) } style { (PreEscaped(STYLE)) } }
            body {
                (report_body(view))
                p { a class="button" href=(view.share_url) { "View the full report" } }
            }
        }
    }
    .into_string()
}

/// The run page: the e-mail's content plus the trend chart.
pub fn page_html(view: RunView<'_>, trend: &[TrendPoint]) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (subject(view)) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (report_body(view))
                h2 { "Pass rate trend" }
                (chart::trend_svg(&view.run.period, trend))
                p class="muted" { "Run " (view.run.id.0) " · generated " (view.run.created_at.format("%Y-%m-%d %H:%M UTC")) }
            }
        }
    }
    .into_string()
}

/// The e-mail's plain-text part (markdown reads fine as text).
pub fn plain_text(view: RunView<'_>) -> String {
    let content = &view.run.content;
    let m = &content.metrics;
    let mut text = format!(
        "{}\n{} · {}\n\nPass rate: {:.2}% (previous {:.2}%, {})\nRuns: {} (previous {}) · passed {} · failed {} · n/a {}\n",
        content.title,
        view.evaluation_name,
        period_text(m),
        m.pass_rate,
        m.previous_pass_rate,
        change(m.pass_rate, m.previous_pass_rate, 2, " pts"),
        m.total_runs,
        m.previous_total_runs,
        m.pass_count,
        m.fail_count,
        m.na_count
    );
    for section in &content.sections {
        text.push_str(&format!("\n## {}\n\n{}\n", section.title, section.content.trim()));
    }
    if !content.citations.is_empty() {
        text.push_str("\nCited generations:\n");
        for c in &content.citations {
            text.push_str(&format!("- {} (trace {}): {}\n", c.generation_id, c.trace_id, c.reason));
        }
    }
    text.push_str(&format!("\nView the full report: {}\n", view.share_url));
    text
}

/// Splits text into pieces of at most `limit` characters, at line ends where possible.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            let room = limit - current.chars().count();
            let take: String = line.chars().take(room).collect();
            if take.chars().count() < line.chars().count() && !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
                continue;
            }
            current.push_str(&take);
            line = &line[take.len()..];
            if current.chars().count() >= limit {
                pieces.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current);
    }
    pieces
}

/// The Slack incoming-webhook payload: header, period, pass rate, the first section
/// (split into blocks within Slack's limits) and the link to the run page.
pub fn slack_message(view: RunView<'_>) -> Value {
    let content = &view.run.content;
    let m = &content.metrics;
    let header: String = content.title.chars().take(150).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": false}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": markdown::slack_escape(&format!("{} · {}", view.evaluation_name, period_text(m)))}]}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!(
            "*Pass rate:* {:.2}% ({}) · *Runs:* {} · passed {} · failed {} · n/a {}",
            m.pass_rate, change(m.pass_rate, m.previous_pass_rate, 2, " pts"), m.total_runs, m.pass_count, m.fail_count, m.na_count)}}),
    ];
    if let Some(section) = content.sections.first() {
        let text = format!("*{}*\n{}", markdown::slack_escape(&section.title), markdown::to_slack(&section.content));
        for piece in split_text(&text, SLACK_SECTION_LIMIT).into_iter().take(SLACK_MAX_BLOCKS - 5) {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": piece}}));
        }
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{}|View the full report>", view.share_url)}}));
    json!({
        "text": format!("{}: {:.2}% pass rate", markdown::slack_escape(&subject(view)), m.pass_rate),
        "blocks": blocks,
    })
}

/// The webhook's JSON body: the run as the API shows it, with the evaluation's name.
pub fn webhook_body(view: RunView<'_>) -> Value {
    let run = view.run;
    json!({
        "type": "evaluation_report.run",
        "evaluation_name": view.evaluation_name,
        "run": {
            "id": run.id.0,
            "report": run.report.0,
            "content": run.content,
            "metadata": run.metadata,
            "period_start": run.period.start,
            "period_end": run.period.end,
            "created_at": run.created_at,
            "share_url": view.share_url,
        }
    })
}

#[cfg(test)]
mod tests;
