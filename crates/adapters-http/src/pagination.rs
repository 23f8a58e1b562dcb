//! The list envelope `{count, next, previous, results}` with absolute neighbour URLs.

use axum::http::{HeaderMap, Uri, header};
use domain::{Page, PageRequest};
use serde::Serialize;

use crate::error::ApiError;

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paginated<T> {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// Reads `limit`/`offset` from the query string.
pub fn page_request(uri: &Uri) -> Result<PageRequest, ApiError> {
    let pairs = query_pairs(uri);
    let find = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    Ok(PageRequest::parse(find("limit"), find("offset"))?)
}

/// The first value of query parameter `name`, decoded.
pub fn query_value(uri: &Uri, name: &str) -> Option<String> {
    query_pairs(uri).into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(url_pairs).unwrap_or_default()
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The absolute URL of this list with another offset, other query parameters kept.
fn link(headers: &HeaderMap, uri: &Uri, limit: i64, offset: i64) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in query_pairs(uri).iter().filter(|(k, _)| k != "limit" && k != "offset") {
        query.append_pair(key, value);
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair("offset", &offset.to_string());
    format!("{scheme}://{host}{}?{}", uri.path(), query.finish())
}

/// Wraps a page in the envelope.
pub fn paginated<T, U>(headers: &HeaderMap, uri: &Uri, page: Page<T>, convert: impl FnMut(T) -> U) -> Paginated<U> {
    let limit = page.request.limit();
    let offset = page.request.offset();
    let next = page.has_next().then(|| link(headers, uri, limit, offset + limit));
    let previous = page.has_previous().then(|| link(headers, uri, limit, (offset - limit).max(0)));
    let count = page.total;
    Paginated { count, next, previous, results: page.items.into_iter().map(convert).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_absolute_and_keep_other_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "api.test:8000".parse().unwrap());
        let uri: Uri = "/api/x?provider=openai&limit=2&offset=2".parse().unwrap();
        let page = Page { items: vec![1, 2], total: 7, request: page_request(&uri).unwrap() };
        let envelope = paginated(&headers, &uri, page, |n| n);
        assert_eq!(envelope.next.as_deref(), Some("http://api.test:8000/api/x?provider=openai&limit=2&offset=4"));
        assert_eq!(envelope.previous.as_deref(), Some("http://api.test:8000/api/x?provider=openai&limit=2&offset=0"));
        assert_eq!(envelope.count, 7);
    }

    #[test]
    fn bad_paging_parameters_are_refused() {
        assert!(page_request(&"/x?limit=-1".parse().unwrap()).is_err());
        assert!(page_request(&"/x?offset=abc".parse().unwrap()).is_err());
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(url_pairs("a=b%20c&d=e+f"), vec![("a".into(), "b c".into()), ("d".into(), "e f".into())]);
    }
}
