//! LivePerson Conversational Cloud API client.

pub mod oauth1;
