//! Request metrics (spec section 10): `llma_http_requests_total` and
//! `llma_http_request_duration_seconds` by route template, method and status. The route
//! is the template the router matched (`/api/environments/{project_id}/...`), never the
//! raw path, so ids cannot explode the series; requests that match no route share
//! `unmatched`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The matched route, carried on the response from inside the router to the outer layer.
#[derive(Clone)]
struct RouteTemplate(String);

/// Inside the router (a route layer): notes which template matched.
pub(crate) async fn note_route(request: Request, next: Next) -> Response {
    // Every route is served with and without the trailing slash: one series for both.
    let route = request.extensions().get::<MatchedPath>().map(|path| match path.as_str() {
        "/" => "/".to_owned(),
        template => template.trim_end_matches('/').to_owned(),
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
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let route = response.extensions().get::<RouteTemplate>().map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!("llma_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("llma_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts what one capture or OTLP request did with its events.
pub(crate) fn ingested(source: &'static str, stored: u64, duplicates: u64, dropped: u64) {
    metrics::counter!("llma_events_ingested_total", "source" => source).increment(stored);
    metrics::counter!("llma_events_duplicate_total", "source" => source).increment(duplicates);
    metrics::counter!("llma_events_dropped_total", "source" => source).increment(dropped);
}
