//! Per-token prices and the table they are looked up in.

/// USD per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenPrices {
    pub input: f64,
    pub output: f64,
    /// Cached input read; the input price when the table has none.
    pub cache_read: Option<f64>,
    /// Cache written; the input price when the table has none.
    pub cache_write: Option<f64>,
}

/// A model's prices as a table knows them.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePrice {
    /// The table's name for the model (what `$ai_model_cost_used` says).
    pub model: String,
    /// The provider the table prices it for.
    pub provider: String,
    pub prices: TokenPrices,
}

/// A price list shipped with the service (pure data: no I/O).
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait PriceTable: Send + Sync + 'static {
    /// The price of `model` (as the event names it), with the event's `provider` (empty
    /// when it named none) to tell routed names apart.
    fn lookup(&self, model: &str, provider: &str) -> Option<TablePrice>;

    /// Which snapshot of the list this is (`$ai_cost_model_table_version`).
    fn version(&self) -> String;
}
