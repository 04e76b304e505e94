//! Engagement attributes (SDEs) of conversations → one typed table per SDE type.
//!
//! Every event is also a row of `sde_events` (raw JSON, in [`crate::messaging`]); these tables
//! hold the fields of the documented types. A row points at its event by
//! `(conversation_id, is_authenticated, event_ordinal)` = `sde_events(conversation_id,
//! is_authenticated, ordinal)`; lists inside an event (products, contacts, keywords) add an
//! `ordinal`.

use lpdrop_liveperson::sde::{
    CartStatus, Contact, CustomerInfo, Lead, MarketingCampaignInfo, PersonalInfo, ProductLine,
    Purchase, SdeEvent, SdePayload, SearchContent, ServiceActivity, ViewedProduct, VisitorError,
};

use crate::buffer::{TableBuffer, buffer_of};
use crate::macros::s;
use crate::schema::TableDef;

table! {
    SDE_CUSTOMER_INFO, fn fill_customer_info(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &CustomerInfo),
    name: "sde_customer_info",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per CUSTOMER_INFO engagement attribute.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.customerInfo.originalTimeStamp", "When the event was created (UTC).";
        "customer_status": utf8 = s(&x.customer_status) => "sdes.events.customerInfo.customerInfo.customerStatus", "Customer status (e.g. active, cancelled).";
        "customer_type": utf8 = s(&x.customer_type) => "sdes.events.customerInfo.customerInfo.customerType", "Customer type (e.g. vip).";
        "balance": float64 = x.balance.0 => "sdes.events.customerInfo.customerInfo.balance", "Account balance.";
        "currency": utf8 = s(&x.currency) => "sdes.events.customerInfo.customerInfo.currency", "Currency of the balance (ISO 4217).";
        "customer_id": utf8 = s(&x.customer_id) => "sdes.events.customerInfo.customerInfo.customerId", "The brand's customer id.";
        "social_id": utf8 = s(&x.social_id) => "sdes.events.customerInfo.customerInfo.socialId", "Social network id.";
        "imei": utf8 = s(&x.imei) => "sdes.events.customerInfo.customerInfo.imei", "Device IMEI.";
        "user_name": utf8 = s(&x.user_name) => "sdes.events.customerInfo.customerInfo.userName", "User name.";
        "account_name": utf8 = s(&x.account_name) => "sdes.events.customerInfo.customerInfo.accountName", "Account name.";
        "role": utf8 = s(&x.role) => "sdes.events.customerInfo.customerInfo.role", "The customer's role.";
        "company_branch": utf8 = s(&x.company_branch) => "sdes.events.customerInfo.customerInfo.companyBranch", "Company branch.";
        "company_size": int64 = x.company_size.0 => "sdes.events.customerInfo.customerInfo.companySize", "Company size.";
        "store_number": utf8 = s(&x.store_number) => "sdes.events.customerInfo.customerInfo.storeNumber", "Store number.";
        "store_zip_code": utf8 = s(&x.store_zip_code) => "sdes.events.customerInfo.customerInfo.storeZipCode", "Store zip code.";
        "login_status": int64 = x.login_status.0 => "sdes.events.customerInfo.customerInfo.loginStatus", "Login status code.";
        "last_payment_date": utf8 = x.last_payment_date.as_ref().and_then(|d| d.iso()).as_deref() => "sdes.events.customerInfo.customerInfo.lastPaymentDate", "YYYY-MM-DD; NULL unless year, month and day form a date (sde_events.event_json keeps what was sent).";
        "registration_date": utf8 = x.registration_date.as_ref().and_then(|d| d.iso()).as_deref() => "sdes.events.customerInfo.customerInfo.registrationDate", "YYYY-MM-DD; NULL unless year, month and day form a date.";
    }
}

table! {
    SDE_PERSONAL_INFO, fn fill_personal_info(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &PersonalInfo),
    name: "sde_personal_info",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per PERSONAL_INFO engagement attribute; contacts are in sde_personal_contacts.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.personalInfo.originalTimeStamp", "When the event was created (UTC).";
        "first_name": utf8 = s(&x.name) => "sdes.events.personalInfo.personalInfo.name", "First name.";
        "surname": utf8 = s(&x.surname) => "sdes.events.personalInfo.personalInfo.surname", "Surname.";
        "gender": utf8 = s(&x.gender) => "sdes.events.personalInfo.personalInfo.gender", "MALE, FEMALE, ...";
        "company": utf8 = s(&x.company) => "sdes.events.personalInfo.personalInfo.company", "Company.";
        "language": utf8 = s(&x.language) => "sdes.events.personalInfo.personalInfo.language", "Language.";
        "age_in_years": float64 = x.customer_age.as_ref().and_then(|a| a.customer_age_in_years.0) => "sdes.events.personalInfo.personalInfo.customerAge.customerAgeInYears", "Age in years.";
        "year_of_birth": int64 = x.customer_age.as_ref().and_then(|a| a.customer_year_of_birth.0) => "sdes.events.personalInfo.personalInfo.customerAge.customerYearOfBirth", "Year of birth.";
        "month_of_birth": int64 = x.customer_age.as_ref().and_then(|a| a.customer_month_of_birth.0) => "sdes.events.personalInfo.personalInfo.customerAge.customerMonthOfBirth", "Month of birth (1-12).";
        "day_of_birth": int64 = x.customer_age.as_ref().and_then(|a| a.customer_date_of_birth.0) => "sdes.events.personalInfo.personalInfo.customerAge.customerDateOfBirth", "Day of the month of birth.";
        "contact_count": int64 = Some(x.contacts.len() as i64) => "derived", "Number of rows in sde_personal_contacts.";
    }
}

table! {
    SDE_PERSONAL_CONTACTS, fn fill_personal_contact(w, cid: Option<&str>, auth: bool, ev: i64, x: &Contact, ordinal: i64),
    name: "sde_personal_contacts",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal", "ordinal"],
    description: "One row per contact of a PERSONAL_INFO engagement attribute (personalInfo.contacts[].personalContact).",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in contacts (0-based).";
        "email": utf8 = x.personal_contact.as_ref().and_then(|p| s(&p.email)) => "sdes.events.personalInfo.personalInfo.contacts.personalContact.email", "Email.";
        "phone": utf8 = x.personal_contact.as_ref().and_then(|p| s(&p.phone)) => "sdes.events.personalInfo.personalInfo.contacts.personalContact.phone", "Phone.";
        "address_country": utf8 = x.personal_contact.as_ref().and_then(|p| p.address.as_ref()).and_then(|a| s(&a.country)) => "sdes.events.personalInfo.personalInfo.contacts.personalContact.address.country", "Country.";
        "address_region": utf8 = x.personal_contact.as_ref().and_then(|p| p.address.as_ref()).and_then(|a| s(&a.region)) => "sdes.events.personalInfo.personalInfo.contacts.personalContact.address.region", "Region.";
        "address_zip_code": utf8 = x.personal_contact.as_ref().and_then(|p| p.address.as_ref()).and_then(|a| s(&a.zip_code)) => "sdes.events.personalInfo.personalInfo.contacts.personalContact.address.zipCode", "Zip code (as text: sent as a number or a string).";
    }
}

table! {
    SDE_CART_STATUS, fn fill_cart_status(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &CartStatus),
    name: "sde_cart_status",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per CART_STATUS engagement attribute; its products are in sde_cart_products.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.cartStatus.originalTimeStamp", "When the event was created (UTC).";
        "total": float64 = x.total.0 => "sdes.events.cartStatus.total", "Cart total.";
        "currency": utf8 = s(&x.currency) => "sdes.events.cartStatus.currency", "Currency (ISO 4217).";
        "num_items": int64 = x.num_items.0 => "sdes.events.cartStatus.numItems", "Number of items.";
        "product_count": int64 = Some(x.products.len() as i64) => "derived", "Number of rows in sde_cart_products.";
    }
}

fn cart(x: &Purchase) -> Option<&CartStatus> {
    x.cart.as_ref()
}

table! {
    SDE_PURCHASE, fn fill_purchase(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &Purchase),
    name: "sde_purchase",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per PURCHASE engagement attribute; the cart's products are in sde_cart_products.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.purchase.originalTimeStamp", "When the event was created (UTC).";
        "total": float64 = x.total.0 => "sdes.events.purchase.total", "Purchase total.";
        "currency": utf8 = s(&x.currency) => "sdes.events.purchase.currency", "Currency (ISO 4217).";
        "order_id": utf8 = s(&x.order_id) => "sdes.events.purchase.orderId", "Order id.";
        "cart_total": float64 = cart(x).and_then(|c| c.total.0) => "sdes.events.purchase.cart.total", "Total of the cart bought.";
        "cart_currency": utf8 = cart(x).and_then(|c| s(&c.currency)) => "sdes.events.purchase.cart.currency", "Currency of the cart.";
        "cart_num_items": int64 = cart(x).and_then(|c| c.num_items.0) => "sdes.events.purchase.cart.numItems", "Number of items in the cart.";
        "product_count": int64 = Some(cart(x).map_or(0, |c| c.products.len() as i64)) => "derived", "Number of rows in sde_cart_products.";
    }
}

table! {
    SDE_CART_PRODUCTS, fn fill_cart_product(w, cid: Option<&str>, auth: bool, ev: i64, sde_type: &str, x: &ProductLine, ordinal: i64),
    name: "sde_cart_products",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal", "ordinal"],
    description: "One row per product of a cart: CART_STATUS products and the products of a PURCHASE's cart.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in products (0-based).";
        "sde_type": utf8 [required] = Some(sde_type) => "derived", "CART_STATUS (sde_cart_status) or PURCHASE (sde_purchase).";
        "quantity": int64 = x.quantity.0 => "sdes.events.cartStatus.products.quantity", "Quantity.";
        "product_name": utf8 = x.product.as_ref().and_then(|p| s(&p.name)) => "sdes.events.cartStatus.products.product.name", "Product name.";
        "product_category": utf8 = x.product.as_ref().and_then(|p| s(&p.category)) => "sdes.events.cartStatus.products.product.category", "Product category.";
        "product_sku": utf8 = x.product.as_ref().and_then(|p| s(&p.sku)) => "sdes.events.cartStatus.products.product.sku", "Product SKU.";
        "product_price": float64 = x.product.as_ref().and_then(|p| p.price.0) => "sdes.events.cartStatus.products.product.price", "Unit price.";
    }
}

table! {
    SDE_VIEWED_PRODUCTS, fn fill_viewed_product(w, cid: Option<&str>, auth: bool, ev: i64, v: &ViewedProduct, x: &ProductLine, ordinal: i64),
    name: "sde_viewed_products",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal", "ordinal"],
    description: "One row per product of a VIEWED_PRODUCT engagement attribute.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in products (0-based).";
        "currency": utf8 = s(&v.currency) => "sdes.events.viewedProduct.currency", "Currency (ISO 4217).";
        "quantity": int64 = x.quantity.0 => "sdes.events.viewedProduct.products.quantity", "Quantity.";
        "product_name": utf8 = x.product.as_ref().and_then(|p| s(&p.name)) => "sdes.events.viewedProduct.products.product.name", "Product name.";
        "product_category": utf8 = x.product.as_ref().and_then(|p| s(&p.category)) => "sdes.events.viewedProduct.products.product.category", "Product category.";
        "product_sku": utf8 = x.product.as_ref().and_then(|p| s(&p.sku)) => "sdes.events.viewedProduct.products.product.sku", "Product SKU.";
        "product_price": float64 = x.product.as_ref().and_then(|p| p.price.0) => "sdes.events.viewedProduct.products.product.price", "Unit price.";
        "status_in_stock": utf8 = x.product.as_ref().and_then(|p| s(&p.status_in_stock)) => "sdes.events.viewedProduct.products.product.statusInStock", "Stock status.";
        "quantity_in_stock": int64 = x.product.as_ref().and_then(|p| p.quantity_in_stock.0) => "sdes.events.viewedProduct.products.product.quantityInStock", "Quantity in stock.";
    }
}

table! {
    SDE_MARKETING_CAMPAIGN, fn fill_marketing_campaign(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &MarketingCampaignInfo),
    name: "sde_marketing_campaign",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per MARKETING_CAMPAIGN_INFO engagement attribute (marketing source).",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.marketingCampaignInfo.originalTimeStamp", "When the event was created (UTC).";
        "originating_channel": int64 = x.originating_channel.0 => "sdes.events.marketingCampaignInfo.marketingCampaignInfo.originatingChannel", "0 Direct, 1 Search, 2 Social, 3 Email, 4 Referral, 5 Paid Search, 6 Display.";
        "affiliate": utf8 = s(&x.affiliate) => "sdes.events.marketingCampaignInfo.marketingCampaignInfo.affiliate", "Affiliate.";
        "campaign_id": utf8 = s(&x.campaign_id) => "sdes.events.marketingCampaignInfo.marketingCampaignInfo.campaignId", "The brand's campaign id.";
    }
}

table! {
    SDE_LEAD, fn fill_lead(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &Lead),
    name: "sde_lead",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per LEAD engagement attribute.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.lead.originalTimeStamp", "When the event was created (UTC).";
        "topic": utf8 = s(&x.topic) => "sdes.events.lead.lead.topic", "Lead topic.";
        "lead_value": float64 = x.value.0 => "sdes.events.lead.lead.value", "Lead value.";
        "currency": utf8 = s(&x.currency) => "sdes.events.lead.lead.currency", "Currency (ISO 4217).";
        "lead_id": utf8 = s(&x.lead_id) => "sdes.events.lead.lead.leadId", "Lead id.";
    }
}

table! {
    SDE_SERVICE_ACTIVITY, fn fill_service_activity(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &ServiceActivity),
    name: "sde_service_activity",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per SERVICE_ACTIVITY engagement attribute.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.serviceActivity.originalTimeStamp", "When the event was created (UTC).";
        "topic": utf8 = s(&x.topic) => "sdes.events.serviceActivity.serviceActivity.topic", "Service topic.";
        "status_code": int64 = x.status.0 => "sdes.events.serviceActivity.serviceActivity.status", "0 Complete, 1 In Progress, 2 Approved, 3 Cancelled, 4 Not Approved, 5 Reviewed, 6 Missing Details, 7 Closed, 8 Removed, 9 Assigned, 10 Waiting for Customer Response, 11 Waiting for Response, 12 Pending, 13 Resolved.";
        "category": utf8 = s(&x.category) => "sdes.events.serviceActivity.serviceActivity.category", "Service category.";
        "service_id": utf8 = s(&x.service_id) => "sdes.events.serviceActivity.serviceActivity.serviceId", "Service id.";
    }
}

table! {
    SDE_VISITOR_ERROR, fn fill_visitor_error(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, x: &VisitorError),
    name: "sde_visitor_error",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal"],
    description: "One row per VISITOR_ERROR engagement attribute (legacy formFillingError included).",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.visitorError.originalTimeStamp", "When the event was created (UTC).";
        "context_id": utf8 = s(&x.context_id) => "sdes.events.visitorError.visitorError.contextId", "Where the error happened.";
        "error_message": utf8 = x.message.0.as_deref() => "sdes.events.visitorError.visitorError.message", "Error message (legacy {\"string\": ...} unwrapped).";
        "error_code": utf8 = x.code.0.as_deref() => "sdes.events.visitorError.visitorError.code", "Error code.";
        "error_level": int64 = x.level.0 => "sdes.events.visitorError.visitorError.level", "Severity level.";
        "resolved": boolean = x.resolved.0 => "sdes.events.visitorError.visitorError.resolved", "The error was resolved.";
    }
}

table! {
    SDE_SEARCH_KEYWORDS, fn fill_search_keyword(w, cid: Option<&str>, auth: bool, ev: i64, e: &SdeEvent, keyword: Option<&str>, ordinal: i64),
    name: "sde_search_keywords",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "event_ordinal", "ordinal"],
    description: "One row per keyword of a SEARCH_CONTENT engagement attribute.",
    columns: {
        "conversation_id": utf8 [required] = cid => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(auth) => "derived", "true: from sdes; false: from unAuthSdes.";
        "event_ordinal": int64 [required] = Some(ev) => "derived", "sde_events.ordinal of the event.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in keywords (0-based).";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.searchContent.originalTimeStamp", "When the event was created (UTC).";
        "keyword": utf8 = keyword => "sdes.events.searchContent.keywords[]", "Search keyword.";
    }
}

/// Writes the typed rows of one event (none for a type this version does not model).
pub(crate) fn append_event(
    tables: &[&'static TableDef],
    buffers: &mut [TableBuffer],
    cid: Option<&str>,
    auth: bool,
    ev: i64,
    e: &SdeEvent,
) {
    macro_rules! at {
        ($def:expr) => {
            buffer_of(tables, buffers, $def)
        };
    }
    match &e.payload {
        SdePayload::CustomerInfo(x) => {
            fill_customer_info(&mut at!(&SDE_CUSTOMER_INFO).row(), cid, auth, ev, e, x)
        }
        SdePayload::PersonalInfo(x) => {
            fill_personal_info(&mut at!(&SDE_PERSONAL_INFO).row(), cid, auth, ev, e, x);
            let b = at!(&SDE_PERSONAL_CONTACTS);
            for (i, c) in x.contacts.iter().enumerate() {
                fill_personal_contact(&mut b.row(), cid, auth, ev, c, i as i64);
            }
        }
        SdePayload::CartStatus(x) => {
            fill_cart_status(&mut at!(&SDE_CART_STATUS).row(), cid, auth, ev, e, x);
            let b = at!(&SDE_CART_PRODUCTS);
            for (i, p) in x.products.iter().enumerate() {
                fill_cart_product(&mut b.row(), cid, auth, ev, "CART_STATUS", p, i as i64);
            }
        }
        SdePayload::Purchase(x) => {
            fill_purchase(&mut at!(&SDE_PURCHASE).row(), cid, auth, ev, e, x);
            let b = at!(&SDE_CART_PRODUCTS);
            for (i, p) in cart(x).map_or(&[][..], |c| &c.products).iter().enumerate() {
                fill_cart_product(&mut b.row(), cid, auth, ev, "PURCHASE", p, i as i64);
            }
        }
        SdePayload::ViewedProduct(x) => {
            let b = at!(&SDE_VIEWED_PRODUCTS);
            for (i, p) in x.products.iter().enumerate() {
                fill_viewed_product(&mut b.row(), cid, auth, ev, x, p, i as i64);
            }
        }
        SdePayload::MarketingCampaignInfo(x) => {
            fill_marketing_campaign(&mut at!(&SDE_MARKETING_CAMPAIGN).row(), cid, auth, ev, e, x)
        }
        SdePayload::Lead(x) => fill_lead(&mut at!(&SDE_LEAD).row(), cid, auth, ev, e, x),
        SdePayload::ServiceActivity(x) => {
            fill_service_activity(&mut at!(&SDE_SERVICE_ACTIVITY).row(), cid, auth, ev, e, x)
        }
        SdePayload::VisitorError(x) => {
            fill_visitor_error(&mut at!(&SDE_VISITOR_ERROR).row(), cid, auth, ev, e, x)
        }
        SdePayload::SearchContent(SearchContent { keywords }) => {
            let b = at!(&SDE_SEARCH_KEYWORDS);
            for (i, k) in keywords.iter().enumerate() {
                fill_search_keyword(&mut b.row(), cid, auth, ev, e, s(k), i as i64);
            }
        }
        SdePayload::Unknown => {}
    }
}
