//! adapters-crypto
