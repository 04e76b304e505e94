//! Engagement attributes (SDEs): `sdes` / `unAuthSdes` of Messaging Interactions records and
//! `sdes` of Engagement History records (API notes §3.7.16 and §4.2).
//!
//! A node is `{"events": [Event, ...]}`; each event wraps exactly one SDE-type key plus
//! envelope fields (`sdeType`, `serverTimeStamp`, `isAuthenticated`). The vendor's payloads
//! are irregular, and every irregularity below is in LivePerson's own examples:
//!
//! - some types repeat their key one level down (`customerInfo.customerInfo{...}`), others are
//!   flat (`cartStatus{total, ...}`), and Engagement History sends `personalInfo` flat where
//!   Messaging Interactions nests it: each payload is read nested when the inner key is there,
//!   flat otherwise;
//! - numbers arrive as strings (`"11.7"`, `"6"`), booleans as `"true"`;
//! - legacy Engagement History records use the wrapper keys `viewProduct` and
//!   `formFillingError`, write `message` and `code` as `{"string": ...}` objects, and carry no
//!   `sdeType` (it is then derived from the key);
//! - `isAuthenticated` sits on the wrapper, in the payload, or nowhere.
//!
//! Every event also keeps its raw JSON text, so an unknown SDE type (or a field not modelled
//! here) is never lost: it lands in the raw `sde_events` tables.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::lenient::{Bool, EpochMs, Float, Int, Text, compact_json, kept_text};
use crate::records::{List, typed_from_str};

/// `{"events": [...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SdeEvents {
    pub events: List<SdeEvent>,
}

/// One engagement-attribute event.
#[derive(Debug, Clone, Default)]
pub struct SdeEvent {
    /// The event exactly as received, as compact JSON text.
    pub raw: String,
    /// The wrapper key that held the payload (`customerInfo`, `viewProduct`, ...); `None` for
    /// an event of a type not modelled here.
    pub key: Option<&'static str>,
    /// `sdeType` as sent, else derived from the wrapper key (`CUSTOMER_INFO`, ...).
    pub sde_type: Option<String>,
    /// When LivePerson processed the event (wrapper `serverTimeStamp`, else the payload's).
    pub server_time: Option<i64>,
    /// When the event was created (payload `originalTimeStamp`).
    pub original_time: Option<i64>,
    /// `isAuthenticated` as sent (wrapper, else payload); `None` when absent.
    pub is_authenticated: Option<bool>,
    pub payload: SdePayload,
}

/// The typed content of an event.
#[derive(Debug, Clone, Default)]
pub enum SdePayload {
    /// Boxed: by far the largest payload.
    CustomerInfo(Box<CustomerInfo>),
    PersonalInfo(PersonalInfo),
    CartStatus(CartStatus),
    Purchase(Purchase),
    MarketingCampaignInfo(MarketingCampaignInfo),
    Lead(Lead),
    ServiceActivity(ServiceActivity),
    ViewedProduct(ViewedProduct),
    VisitorError(VisitorError),
    SearchContent(SearchContent),
    /// A type this version does not model (e.g. `userUpdate`): kept in `raw` only.
    #[default]
    Unknown,
}

/// Wrapper key, the `sdeType` it stands for, and the inner key of nested payloads.
const KINDS: &[(&str, &str, &str)] = &[
    ("customerInfo", "CUSTOMER_INFO", "customerInfo"),
    ("personalInfo", "PERSONAL_INFO", "personalInfo"),
    ("cartStatus", "CART_STATUS", "cartStatus"),
    ("purchase", "PURCHASE", "purchase"),
    (
        "marketingCampaignInfo",
        "MARKETING_CAMPAIGN_INFO",
        "marketingCampaignInfo",
    ),
    ("lead", "LEAD", "lead"),
    ("serviceActivity", "SERVICE_ACTIVITY", "serviceActivity"),
    ("viewedProduct", "VIEWED_PRODUCT", "viewedProduct"),
    // Legacy Engagement History wrapper keys.
    ("viewProduct", "VIEWED_PRODUCT", "viewProduct"),
    ("visitorError", "VISITOR_ERROR", "visitorError"),
    ("formFillingError", "VISITOR_ERROR", "visitorError"),
    ("searchContent", "SEARCH_CONTENT", "searchContent"),
];

/// The envelope fields, on the wrapper and (sometimes) repeated in the payload.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Envelope {
    sde_type: Text,
    server_time_stamp: EpochMs,
    original_time_stamp: EpochMs,
    is_authenticated: Bool,
}

impl<'de> Deserialize<'de> for SdeEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let mut event = SdeEvent::from_text(raw.get()).map_err(de::Error::custom)?;
        event.raw = kept_text(raw).unwrap_or_default();
        Ok(event)
    }
}

impl SdeEvent {
    /// Reads one event from its JSON text; `raw` is left for the caller to fill.
    fn from_text(text: &str) -> Result<SdeEvent, String> {
        if !text.starts_with('{') {
            return Err(format!(
                "an SDE event must be an object, got {}",
                compact_json(text)
            ));
        }
        let wrapper: Envelope = typed_from_str(text)?;
        let mut event = SdeEvent {
            sde_type: wrapper.sde_type.0,
            server_time: wrapper.server_time_stamp.0,
            original_time: wrapper.original_time_stamp.0,
            is_authenticated: wrapper.is_authenticated.0,
            ..SdeEvent::default()
        };
        let wrapper_keys: Vec<&str> = KINDS.iter().map(|&(key, _, _)| key).collect();
        // The first kind in KINDS whose key holds an object.
        let Some((&(key, sde_type, inner_key), payload)) = KINDS
            .iter()
            .zip(members(text, &wrapper_keys)?)
            .find_map(|(kind, value)| value.filter(|v| is_object(v)).map(|v| (kind, v)))
        else {
            return Ok(event);
        };
        let payload = payload.get();
        event.key = Some(key);
        if event.sde_type.is_none() {
            event.sde_type = Some(sde_type.to_string());
        }
        let envelope: Envelope = typed_from_str(payload).map_err(|e| format!("{key}: {e}"))?;
        event.server_time = event.server_time.or(envelope.server_time_stamp.0);
        event.original_time = event.original_time.or(envelope.original_time_stamp.0);
        event.is_authenticated = event.is_authenticated.or(envelope.is_authenticated.0);
        // Nested when the payload repeats its key one level down, flat otherwise.
        let inner = members(payload, &[inner_key])?.pop().flatten();
        let (body, path) = match inner.filter(|v| is_object(v)) {
            Some(inner) => (inner.get(), format!("{key}.{inner_key}")),
            None => (payload, key.to_string()),
        };
        let read = |e: String| format!("{path}: {e}");
        event.payload = match sde_type {
            "CUSTOMER_INFO" => {
                SdePayload::CustomerInfo(Box::new(typed_from_str(body).map_err(read)?))
            }
            "PERSONAL_INFO" => SdePayload::PersonalInfo(typed_from_str(body).map_err(read)?),
            "CART_STATUS" => SdePayload::CartStatus(typed_from_str(body).map_err(read)?),
            "PURCHASE" => SdePayload::Purchase(typed_from_str(body).map_err(read)?),
            "MARKETING_CAMPAIGN_INFO" => {
                SdePayload::MarketingCampaignInfo(typed_from_str(body).map_err(read)?)
            }
            "LEAD" => SdePayload::Lead(typed_from_str(body).map_err(read)?),
            "SERVICE_ACTIVITY" => SdePayload::ServiceActivity(typed_from_str(body).map_err(read)?),
            "VIEWED_PRODUCT" => SdePayload::ViewedProduct(typed_from_str(body).map_err(read)?),
            "VISITOR_ERROR" => SdePayload::VisitorError(typed_from_str(body).map_err(read)?),
            "SEARCH_CONTENT" => SdePayload::SearchContent(typed_from_str(body).map_err(read)?),
            _ => SdePayload::Unknown,
        };
        Ok(event)
    }
}

fn is_object(value: &RawValue) -> bool {
    value.get().starts_with('{')
}

/// The values of the members named `names` in the JSON object `text`, by position in
/// `names`: the last one where a name repeats, as a parsed tree keeps it. Other members are
/// skipped without being read into anything.
fn members<'t>(text: &'t str, names: &[&str]) -> Result<Vec<Option<&'t RawValue>>, String> {
    struct Members<'n>(&'n [&'n str]);
    impl<'de> Visitor<'de> for Members<'_> {
        type Value = Vec<Option<&'de RawValue>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = vec![None; self.0.len()];
            while let Some(index) = map.next_key_seed(NameIndex(self.0))? {
                match index {
                    Some(i) => found[i] = Some(map.next_value::<&RawValue>()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }
    /// A member's key, as its position in the names sought.
    struct NameIndex<'n>(&'n [&'n str]);
    impl<'de> DeserializeSeed<'de> for NameIndex<'_> {
        type Value = Option<usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<'de> Visitor<'de> for NameIndex<'_> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
            Ok(self.0.iter().position(|name| *name == key))
        }
    }
    serde_json::Deserializer::from_str(text)
        .deserialize_map(Members(names))
        .map_err(|e| e.to_string())
}

/// A calendar date sent as `{year, month, day}` (numbers as strings).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SdeDate {
    pub year: Int,
    pub month: Int,
    pub day: Int,
}

impl SdeDate {
    /// `YYYY-MM-DD` when year, month and day form a real date; `None` otherwise (the event's
    /// raw JSON keeps whatever was sent).
    pub fn iso(&self) -> Option<String> {
        let (y, m, d) = (self.year.0?, self.month.0?, self.day.0?);
        let date = chrono::NaiveDate::from_ymd_opt(
            i32::try_from(y).ok()?,
            u32::try_from(m).ok()?,
            u32::try_from(d).ok()?,
        )?;
        Some(date.format("%Y-%m-%d").to_string())
    }
}

/// A string that legacy records wrap as `{"string": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LegacyText(pub Option<String>);

impl<'de> Deserialize<'de> for LegacyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let inner = match &v {
            Value::Object(m) if m.len() == 1 && m.contains_key("string") => &m["string"],
            other => other,
        };
        Text::deserialize(inner)
            .map(|t| LegacyText(t.0))
            .map_err(de::Error::custom)
    }
}

/// CUSTOMER_INFO.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomerInfo {
    pub customer_status: Text,
    pub customer_type: Text,
    pub balance: Float,
    pub currency: Text,
    pub customer_id: Text,
    pub social_id: Text,
    pub imei: Text,
    pub user_name: Text,
    pub account_name: Text,
    pub role: Text,
    pub company_branch: Text,
    pub company_size: Int,
    pub store_number: Text,
    pub store_zip_code: Text,
    pub login_status: Int,
    pub last_payment_date: Option<SdeDate>,
    pub registration_date: Option<SdeDate>,
}

/// PERSONAL_INFO.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersonalInfo {
    pub name: Text,
    pub surname: Text,
    pub gender: Text,
    pub company: Text,
    pub language: Text,
    pub customer_age: Option<CustomerAge>,
    pub contacts: List<Contact>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomerAge {
    pub customer_age_in_years: Float,
    pub customer_year_of_birth: Int,
    pub customer_month_of_birth: Int,
    /// Day of the month of birth.
    pub customer_date_of_birth: Int,
}

/// `contacts[]`: `{personalContact: {...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Contact {
    pub personal_contact: Option<PersonalContact>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersonalContact {
    pub email: Text,
    pub phone: Text,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Address {
    pub country: Text,
    pub region: Text,
    pub zip_code: Text,
}

/// `products[]` of carts, purchases and viewed products.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProductLine {
    pub quantity: Int,
    pub product: Option<Product>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Product {
    pub name: Text,
    pub category: Text,
    pub sku: Text,
    pub price: Float,
    pub status_in_stock: Text,
    pub quantity_in_stock: Int,
}

/// CART_STATUS (flat).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CartStatus {
    pub total: Float,
    pub currency: Text,
    pub num_items: Int,
    pub products: List<ProductLine>,
}

/// PURCHASE (flat), with the cart it bought.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Purchase {
    pub total: Float,
    pub currency: Text,
    pub order_id: Text,
    pub cart: Option<CartStatus>,
}

/// MARKETING_CAMPAIGN_INFO.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MarketingCampaignInfo {
    /// 0 Direct, 1 Search, 2 Social, 3 Email, 4 Referral, 5 Paid Search, 6 Display.
    pub originating_channel: Int,
    pub affiliate: Text,
    pub campaign_id: Text,
}

/// LEAD.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Lead {
    pub topic: Text,
    pub value: Float,
    pub currency: Text,
    pub lead_id: Text,
}

/// SERVICE_ACTIVITY.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceActivity {
    pub topic: Text,
    /// 0 Complete, 1 In Progress, ... 13 Resolved (API notes §3.7.16).
    pub status: Int,
    pub category: Text,
    pub service_id: Text,
}

/// VIEWED_PRODUCT (flat).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ViewedProduct {
    pub currency: Text,
    pub products: List<ProductLine>,
}

/// VISITOR_ERROR.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VisitorError {
    pub context_id: Text,
    pub message: LegacyText,
    pub code: LegacyText,
    pub level: Int,
    pub resolved: Bool,
}

/// SEARCH_CONTENT (flat).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchContent {
    pub keywords: List<Text>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Result<SdeEvent, String> {
        serde_json::from_str::<SdeEvent>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn nested_and_flat_payloads() {
        let e = event(
            r#"{"customerInfo":{"serverTimeStamp":"1497871291351","originalTimeStamp":"1497871291000",
                "customerInfo":{"customerId":"C1","balance":"-400.99","companySize":"2222",
                                "lastPaymentDate":{"year":"2014","month":"10","day":"15"}}},
                "sdeType":"CUSTOMER_INFO","serverTimeStamp":"1497871291351"}"#,
        )
        .unwrap();
        assert_eq!(e.key, Some("customerInfo"));
        assert_eq!(e.server_time, Some(1497871291351));
        assert_eq!(e.original_time, Some(1497871291000));
        assert_eq!(e.is_authenticated, None);
        let SdePayload::CustomerInfo(c) = e.payload else {
            panic!("customer info")
        };
        assert_eq!(c.customer_id.0.as_deref(), Some("C1"));
        assert_eq!(c.balance.0, Some(-400.99));
        assert_eq!(c.company_size.0, Some(2222));
        assert_eq!(
            c.last_payment_date.unwrap().iso().as_deref(),
            Some("2014-10-15")
        );

        let e = event(
            r#"{"cartStatus":{"total":"11.7","numItems":"6","products":[{"quantity":"1",
                "product":{"name":"p","price":"7.8"}}]},"isAuthenticated":false}"#,
        )
        .unwrap();
        assert_eq!(e.sde_type.as_deref(), Some("CART_STATUS"));
        assert_eq!(e.is_authenticated, Some(false));
        let SdePayload::CartStatus(c) = e.payload else {
            panic!("cart")
        };
        assert_eq!(c.num_items.0, Some(6));
        assert_eq!(c.products[0].product.as_ref().unwrap().price.0, Some(7.8));
    }

    #[test]
    fn legacy_keys_and_wrapped_strings() {
        let e = event(
            r#"{"formFillingError":{"serverTimeStamp":"1435764972047","visitorError":{
                "contextId":"context.id","message":{"string":"Expiration date missing"},
                "code":{"string":"er100004"},"level":"2","resolved":"true"}}}"#,
        )
        .unwrap();
        assert_eq!(e.sde_type.as_deref(), Some("VISITOR_ERROR"));
        let SdePayload::VisitorError(v) = e.payload else {
            panic!("visitor error")
        };
        assert_eq!(v.message.0.as_deref(), Some("Expiration date missing"));
        assert_eq!(v.code.0.as_deref(), Some("er100004"));
        assert_eq!(v.level.0, Some(2));
        assert_eq!(v.resolved.0, Some(true));
        // Engagement History's flat personal info.
        let e = event(r#"{"personalInfo":{"name":"ELI","contacts":[{"personalContact":{"address":{"zipCode":12345}}}]}}"#)
            .unwrap();
        let SdePayload::PersonalInfo(p) = e.payload else {
            panic!("personal info")
        };
        assert_eq!(p.name.0.as_deref(), Some("ELI"));
        let address = p.contacts[0]
            .personal_contact
            .as_ref()
            .unwrap()
            .address
            .as_ref()
            .unwrap();
        assert_eq!(address.zip_code.0.as_deref(), Some("12345"));
    }

    #[test]
    fn unknown_types_are_kept_raw_and_bad_values_name_their_field() {
        let e = event(r#"{"userUpdate":{"x":1},"sdeType":"USER_UPDATE"}"#).unwrap();
        assert!(matches!(e.payload, SdePayload::Unknown));
        assert_eq!(e.sde_type.as_deref(), Some("USER_UPDATE"));
        assert!(e.raw.contains("userUpdate"));
        let err = event(r#"{"lead":{"lead":{"value":"a lot"}}}"#).unwrap_err();
        assert!(err.starts_with("lead.lead: value:"), "{err}");
        let err = event(r#"{"purchase":{"cart":{"numItems":"many"}}}"#).unwrap_err();
        assert!(err.contains("purchase: cart.numItems"), "{err}");
        assert!(event("\"x\"").is_err());
    }

    #[test]
    fn impossible_dates_are_none() {
        let d: SdeDate = serde_json::from_str(r#"{"year":"2014","month":"13","day":"1"}"#).unwrap();
        assert_eq!(d.iso(), None);
        let d: SdeDate = serde_json::from_str(r#"{"year":"2014"}"#).unwrap();
        assert_eq!(d.iso(), None);
    }
}
