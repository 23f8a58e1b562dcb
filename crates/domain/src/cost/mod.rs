//! What a generation cost (spec section 5.2), decided when it is ingested: the costs the
//! client sent, else the per-token prices it sent, else a price table's; stamped on the
//! event without overwriting anything the client sent, so the same queries work whether
//! the client or the service priced it.

mod price;
mod stamp;

pub use price::{PriceTable, TablePrice, TokenPrices};
pub use stamp::{CostSource, Priced, stamp_cost};

#[cfg(feature = "mocks")]
pub use price::MockPriceTable;
