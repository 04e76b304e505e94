//! The Connector API webhooks: what LivePerson POSTs to an app installation's endpoints.
//!
//! - [`signature`]: `X-LivePerson-Signature`, the HMAC of the raw body with the client secret.
//! - [`notification`]: the notification bodies, decoded leniently into the events lpdrop keeps.
//!
//! The vendor's example bodies, with their quirks, and two signed test vectors are in
//! `tests/fixtures/liveperson-docs/webhooks/` (its README says where each comes from); how the
//! listener turns deliveries into drops is in ARCHITECTURE.md §6.

pub mod notification;
pub mod signature;

/// The header naming the account (brand) a notification belongs to.
pub const ACCOUNT_HEADER: &str = "x-liveperson-account-id";
/// The header naming the app installation's client id.
pub const CLIENT_HEADER: &str = "x-liveperson-client-id";
