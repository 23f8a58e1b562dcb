//! Limit/offset pagination shared by every list endpoint.

/// The largest page a client may ask for.
pub const MAX_LIMIT: i64 = 1000;
/// The page size when the client names none.
pub const DEFAULT_LIMIT: i64 = 100;

/// A validated `limit`/`offset` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    limit: i64,
    offset: i64,
}

/// Why a `limit`/`offset` pair was refused; names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageRequestError {
    #[error("{field} is not a non-negative integer")]
    NotANonNegativeInteger { field: &'static str },
    #[error("limit is outside 1..={MAX_LIMIT}")]
    LimitOutOfRange,
}

impl PageRequestError {
    /// The query parameter at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NotANonNegativeInteger { field } => field,
            Self::LimitOutOfRange => "limit",
        }
    }
}

impl PageRequest {
    /// Parses the raw query values; absent values take the defaults.
    pub fn parse(limit: Option<&str>, offset: Option<&str>) -> Result<Self, PageRequestError> {
        let limit = match limit.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or(PageRequestError::NotANonNegativeInteger { field: "limit" })?,
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageRequestError::LimitOutOfRange);
        }
        let offset = match offset.map(str::trim).filter(|s| !s.is_empty()) {
            None => 0,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or(PageRequestError::NotANonNegativeInteger { field: "offset" })?,
        };
        Ok(Self { limit, offset })
    }

    /// A page request from trusted numbers (clamped into range).
    pub fn new(limit: i64, offset: i64) -> Self {
        Self { limit: limit.clamp(1, MAX_LIMIT), offset: offset.max(0) }
    }

    pub fn limit(&self) -> i64 {
        self.limit
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT, 0)
    }
}

/// One page of results and the total count that the filter matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub request: PageRequest,
}

impl<T> Page<T> {
    /// Whether rows exist after this page.
    pub fn has_next(&self) -> bool {
        self.request.offset + (self.items.len() as i64) < self.total
    }

    /// Whether rows exist before this page.
    pub fn has_previous(&self) -> bool {
        self.request.offset > 0
    }

    /// Converts each item, keeping the counts.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total, request: self.request }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_absent() {
        let page = PageRequest::parse(None, None).unwrap();
        assert_eq!((page.limit(), page.offset()), (DEFAULT_LIMIT, 0));
    }

    #[test]
    fn negative_and_non_numeric_values_are_refused_naming_the_field() {
        assert_eq!(PageRequest::parse(Some("-1"), None).unwrap_err().field(), "limit");
        assert_eq!(PageRequest::parse(None, Some("x")).unwrap_err().field(), "offset");
        assert_eq!(PageRequest::parse(Some("1001"), None).unwrap_err(), PageRequestError::LimitOutOfRange);
        assert_eq!(PageRequest::parse(Some("0"), None).unwrap_err(), PageRequestError::LimitOutOfRange);
    }

    #[test]
    fn page_knows_its_neighbours() {
        let page = Page { items: vec![1, 2], total: 5, request: PageRequest::new(2, 2) };
        assert!(page.has_next());
        assert!(page.has_previous());
        let last = Page { items: vec![5], total: 5, request: PageRequest::new(2, 4) };
        assert!(!last.has_next());
    }
}
