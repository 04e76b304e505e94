//! The Connector API webhooks: what LivePerson POSTs to an app installation's endpoints.
//!
//! - [`signature`]: `X-LivePerson-Signature`, the HMAC of the raw body with the client secret.
//! - [`notification`]: the notification bodies, decoded leniently into the events lpdrop keeps.
//!
//! The protocol's facts (delivery, retries, headers, payload shapes) are summarised in
//! ARCHITECTURE.md §9 of this repository.

pub mod notification;
pub mod signature;

/// The header naming the account (brand) a notification belongs to.
pub const ACCOUNT_HEADER: &str = "x-liveperson-account-id";
/// The header naming the app installation's client id.
pub const CLIENT_HEADER: &str = "x-liveperson-client-id";
