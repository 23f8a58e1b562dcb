//! Request metrics (spec section 10): `llma_http_requests_total` and
//! `llma_http_request_duration_seconds` by route template, method and status. The route
//! is the template the router matched (`/api/environments/{project_id}/...`), never the
//! raw path, so ids cannot explode the series; requests that match no route share
//! `unmatched`.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// The matched route, carried on the response from inside the router to the outer layer.
#[derive(Clone, Copy)]
struct RouteTemplate(&'static str);

/// Route templates as `'static` labels, so that recording a request allocates nothing.
/// Only templates the router matched get here, so the set is bounded by the routes.
fn interned_route(template: &str) -> &'static str {
    static ROUTES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(found) = routes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(template) {
        return found;
    }
    let mut routes = routes.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = routes.get(template) {
        return found;
    }
    let leaked: &'static str = Box::leak(template.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

/// A method label; methods outside the standard ones share `other` (clients choose them).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A status label: the three digits, from a table made once.
fn status_label(status: u16) -> &'static str {
    static STATUSES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let table = STATUSES.get_or_init(|| {
        (0..1000u16).map(|code| &*Box::leak(format!("{code:03}").into_boxed_str())).collect::<Vec<&'static str>>()
    });
    table.get(usize::from(status)).copied().unwrap_or("other")
}

/// Inside the router (a route layer): notes which template matched.
pub(crate) async fn note_route(request: Request, next: Next) -> Response {
    // Every route is served with and without the trailing slash: one series for both.
    let route = request.extensions().get::<MatchedPath>().map(|path| match path.as_str() {
        "/" => "/",
        template => interned_route(template.trim_end_matches('/')),
    });
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Around everything: counts and times each request by its route template.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = response.extensions().get::<RouteTemplate>().map_or("unmatched", |r| r.0);
    let status = status_label(response.status().as_u16());
    metrics::counter!("llma_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("llma_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts what one capture or OTLP request did with its events.
pub(crate) fn ingested(source: &'static str, stored: u64, duplicates: u64, dropped: u64, unpriced: u64) {
    metrics::counter!("llma_events_unpriced_total", "source" => source).increment(unpriced);
    metrics::counter!("llma_events_ingested_total", "source" => source).increment(stored);
    metrics::counter!("llma_events_duplicate_total", "source" => source).increment(duplicates);
    metrics::counter!("llma_events_dropped_total", "source" => source).increment(dropped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_three_digits_the_standard_methods_and_one_entry_per_template() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(404), "404");
        assert_eq!(status_label(1200), "other");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        let first = interned_route("/api/environments/{project_id}/x");
        let again = interned_route(&String::from("/api/environments/{project_id}/x"));
        assert!(std::ptr::eq(first, again), "a template is leaked once, then reused");
    }
}
