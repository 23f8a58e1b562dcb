//! What a generation cost (spec section 5.2), decided when it is ingested: the costs the
//! client sent, else the per-token prices it sent, else the project's own prices, else a
//! price table's; stamped on the event without overwriting anything the client sent, so
//! the same queries work whether the client or the service priced it.

mod price;
mod project;
mod service;
mod stamp;
mod store;

pub use price::{PriceTable, TablePrice, TokenPrices};
pub use project::{
    ModelMatch, ModelPriceId, ModelPriceInput, ModelPriceSpec, ProjectPrice, parse_token_price, project_price,
};
pub use service::ModelPriceService;
pub use stamp::{CostSource, Priced, needs_price_list, price_call, stamp_cost};
pub use store::ModelPriceStore;

#[cfg(feature = "mocks")]
pub use price::MockPriceTable;
#[cfg(feature = "mocks")]
pub use store::MockModelPriceStore;
