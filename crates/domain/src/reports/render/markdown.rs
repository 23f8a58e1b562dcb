//! Markdown written by an LLM, made safe: HTML with any raw HTML shown as text, only
//! http(s) links kept and no images (nothing loads from elsewhere); Slack mrkdwn with its
//! control characters escaped.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Markdown to HTML that cannot run script or load anything.
pub fn to_safe_html(markdown: &str) -> String {
    let mut dropped_links = Vec::new();
    let mut in_image = 0usize;
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).filter_map(
        |event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
            Event::Start(Tag::Link { dest_url, .. }) if !safe_link(&dest_url) => {
                dropped_links.push(true);
                None
            }
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                dropped_links.push(false);
                Some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
            }
            Event::End(TagEnd::Link) => (!dropped_links.pop().unwrap_or(true)).then_some(Event::End(TagEnd::Link)),
            Event::Start(Tag::Image { .. }) => {
                in_image += 1;
                None
            }
            Event::End(TagEnd::Image) => {
                in_image = in_image.saturating_sub(1);
                None
            }
            other => Some(other),
        },
    );
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// Escapes text for Slack mrkdwn (`&`, `<`, `>` are its control characters).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Markdown to Slack mrkdwn: text escaped, emphasis and headings as bold, http(s) links
/// as Slack links, list items as bullets.
pub fn to_slack(markdown: &str) -> String {
    let mut out = String::new();
    let mut link: Option<String> = None;
    let mut link_text = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                if link.is_some() {
                    link_text.push_str(&text);
                } else {
                    out.push_str(&slack_escape(&text));
                }
            }
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => out.push('*'),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => out.push('_'),
            Event::Start(Tag::Heading { .. }) => out.push('*'),
            Event::End(TagEnd::Heading(_)) => out.push_str("*\n"),
            Event::Start(Tag::Item) => out.push_str("• "),
            Event::End(TagEnd::Item | TagEnd::Paragraph) => out.push('\n'),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Link { dest_url, .. }) => {
                link = Some(dest_url.to_string());
                link_text.clear();
            }
            Event::End(TagEnd::Link) => {
                let url = link.take().unwrap_or_default();
                let text = slack_escape(&link_text.replace('|', " "));
                if safe_link(&url) && !url.contains(['<', '>', '|', ' ']) {
                    out.push_str(&format!("<{url}|{text}>"));
                } else {
                    out.push_str(&text);
                }
            }
            _ => {}
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = to_safe_html("Hi <script>alert(1)</script> and <img src=x onerror=alert(2)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn only_http_links_survive_and_images_never_load() {
        let html =
            to_safe_html("[a](javascript:alert(1)) [b](https://ok.example/) ![c](https://tracker.example/p.png)");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains(r#"<a href="https://ok.example/">b</a>"#), "{html}");
        assert!(!html.contains("<img") && !html.contains("tracker"), "{html}");
        assert!(html.contains('a') && html.contains('c'));
    }

    #[test]
    fn block_html_is_text_too() {
        let html = to_safe_html("<div onclick=\"x()\">\n\nhello\n\n</div>");
        assert!(!html.contains("<div"), "{html}");
    }

    #[test]
    fn slack_text_is_escaped_and_links_checked() {
        let text =
            to_slack("**Bold** <script>x</script> [ok](https://a.example/) [bad](javascript:alert(1))\n\n- item");
        assert!(text.contains("*Bold*"), "{text}");
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(text.contains("<https://a.example/|ok>"), "{text}");
        assert!(!text.contains("javascript"), "{text}");
        assert!(text.contains("• item"), "{text}");
    }
}
