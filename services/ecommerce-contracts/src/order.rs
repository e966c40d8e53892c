//! Orders: placing, reading and cancelling them.
//!
//! A `CreateOrder` nests five levels deep (`items[2].gift.recipient.address.country`) and carries
//! cross-field rules that a payment API would check: the payment amount equals the items' total
//! minus the discount to the cent, one currency throughout, a card only (and always) for card
//! payments, a billing country the method supports, and a card that is Luhn-valid and not expired.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::rules;

/// Places an order: reserves its stock, charges its payment, and returns a receipt. Calling it again
/// with the same `order_id` and the same content returns the same receipt and charges nothing more.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
// Each cross-field rule is its own schema function so that all of them are reported at once;
// clippy takes validator's repeated `skip_on_field_errors` for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[validate(schema(function = "rules::amount_matches_items", skip_on_field_errors = false))]
#[validate(schema(function = "rules::one_currency", skip_on_field_errors = false))]
#[validate(schema(function = "rules::card_matches_method", skip_on_field_errors = false))]
#[validate(schema(function = "rules::billing_country_supports_method", skip_on_field_errors = false))]
#[validate(schema(function = "rules::discount_code_known", skip_on_field_errors = false))]
pub struct CreateOrder {
    /// The client's id for the order; also its idempotency key.
    #[validate(custom(function = "rules::order_id_format"))]
    #[schemars(regex(pattern = rules::ORDER_ID_PATTERN))]
    pub order_id: String,
    /// Who orders.
    #[validate(nested)]
    pub customer: Customer,
    /// What is ordered: 1 to 100 lines.
    #[validate(length(min = 1, max = 100), nested)]
    pub items: Vec<LineItem>,
    /// How it is paid.
    #[validate(nested)]
    pub payment: Payment,
    /// A code from the discount catalog ([`rules::discount`]).
    #[validate(custom(function = "rules::discount_code_format"))]
    #[schemars(regex(pattern = rules::DISCOUNT_CODE_PATTERN))]
    pub discount_code: Option<String>,
}

/// A customer profile.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Customer {
    /// The customer's id.
    #[validate(length(min = 1, max = 64))]
    pub id: String,
    /// Full name.
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    /// Email address.
    #[validate(email, length(max = 254))]
    pub email: String,
    /// Phone number in E.164 form: `+4930123456`.
    #[validate(custom(function = "rules::phone_format"))]
    #[schemars(regex(pattern = rules::PHONE_PATTERN))]
    pub phone: String,
    /// Where the order goes.
    #[validate(nested)]
    pub shipping_address: Address,
    /// Where the invoice goes; its country must be supported by the payment method.
    #[validate(nested)]
    pub billing_address: Address,
}

/// A postal address. The postal code's format depends on the country.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
#[validate(schema(function = "rules::postal_code_fits_country", skip_on_field_errors = false))]
pub struct Address {
    /// Street and number.
    #[validate(length(min = 1, max = 100))]
    pub line1: String,
    /// Apartment, floor, company.
    #[validate(length(max = 100))]
    pub line2: Option<String>,
    /// City.
    #[validate(length(min = 1, max = 60))]
    pub city: String,
    /// Postal code, in the country's format (`10115` in DE, `SW1A 1AA` in GB, `94103-1234` in US).
    #[validate(length(min = 2, max = 10))]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code of a country the shop ships to ([`rules::COUNTRIES`]).
    #[validate(custom(function = "rules::supported_country"))]
    pub country: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
pub struct LineItem {
    /// Stock keeping unit: `SKU-00042`.
    #[validate(custom(function = "rules::sku_format"))]
    #[schemars(regex(pattern = rules::SKU_PATTERN))]
    pub sku: String,
    /// How many, 1 to 1000.
    #[validate(range(min = 1, max = 1000))]
    pub quantity: u32,
    /// Price of one.
    #[validate(nested)]
    pub unit_price: Money,
    /// Choices such as size and colour: at most 10, keys up to 32 and values up to 64 characters.
    #[validate(custom(function = "rules::options_within_limits"))]
    pub options: Option<BTreeMap<String, String>>,
    /// Sent as a gift to someone else.
    #[validate(nested)]
    pub gift: Option<Gift>,
}

/// A line sent as a gift.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Gift {
    /// The card's text.
    #[validate(length(max = 200))]
    pub message: String,
    /// Who receives it.
    #[validate(nested)]
    pub recipient: Recipient,
}

/// The receiver of a gift.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Recipient {
    /// Full name.
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    /// Where the gift goes.
    #[validate(nested)]
    pub address: Address,
}

/// An amount of money in minor units (cents), so that sums are exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Money {
    /// Amount in cents; at most 100 million units of the currency.
    #[validate(range(max = 10_000_000_000u64))]
    pub amount_cents: u64,
    /// ISO 4217 code of a supported currency ([`rules::CURRENCIES`]).
    #[validate(custom(function = "rules::supported_currency"))]
    pub currency: String,
}

/// How an order is paid.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Payment {
    /// The method.
    pub method: PaymentMethod,
    /// The amount charged: the items' total minus the discount.
    #[validate(nested)]
    pub amount: Money,
    /// The card, for (and only for) card payments.
    #[validate(nested)]
    pub card: Option<Card>,
}

/// Payment methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// A credit or debit card.
    Card,
    /// PayPal.
    Paypal,
    /// A SEPA bank transfer.
    BankTransfer,
}

/// Card data, shaped and checked as a payment API would: never logged, never echoed back.
#[derive(Clone, PartialEq, Hash, Serialize, Deserialize, Validate, JsonSchema)]
#[validate(schema(function = "rules::card_not_expired", skip_on_field_errors = false))]
pub struct Card {
    /// 12 to 19 digits, Luhn-valid; spaces allowed between groups.
    #[validate(custom(function = "rules::luhn_valid"))]
    pub number: String,
    /// Name on the card.
    #[validate(length(min = 1, max = 100))]
    pub holder: String,
    /// Expiry month, 1 to 12.
    #[validate(range(min = 1, max = 12))]
    pub expiry_month: u8,
    /// Expiry year, four digits.
    #[validate(range(min = 2000, max = 2100))]
    pub expiry_year: u16,
    /// The 3 or 4 digits on the back.
    #[validate(custom(function = "rules::cvc_format"))]
    #[schemars(regex(pattern = rules::CVC_PATTERN))]
    pub cvc: String,
}

impl Card {
    /// The last four digits, which a receipt may show.
    pub fn last4(&self) -> String {
        let digits: Vec<char> = self.number.chars().filter(char::is_ascii_digit).collect();
        digits[digits.len().saturating_sub(4)..].iter().collect()
    }

    /// The card network, from the number's prefix.
    pub fn brand(&self) -> &'static str {
        match self.number.trim_start().chars().next() {
            Some('4') => "visa",
            Some('5' | '2') => "mastercard",
            Some('3') => "amex",
            _ => "other",
        }
    }
}

/// Card numbers and security codes never reach a log.
impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("number", &format_args!("**** {}", self.last4()))
            .field("holder", &self.holder)
            .field("expiry", &format_args!("{:02}/{}", self.expiry_month, self.expiry_year))
            .field("cvc", &"***")
            .finish()
    }
}

/// The state of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stock reserved and payment charged.
    Placed,
    /// Cancelled: stock released and payment refunded.
    Cancelled,
}

/// What `create_order` and `get_order` answer. Card data appears only as brand and last four digits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderReceipt {
    /// The order's id.
    pub order_id: String,
    /// Its state.
    pub status: OrderStatus,
    /// The customer's id.
    pub customer_id: String,
    /// One line per item.
    pub lines: Vec<ReceiptLine>,
    /// The items' total before the discount, in cents.
    pub subtotal_cents: u64,
    /// The discount, in cents.
    pub discount_cents: u64,
    /// What was charged.
    pub charged: Money,
    /// How it was paid.
    pub payment: PaymentSummary,
}

/// One line of a receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptLine {
    /// The item.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Quantity times unit price, in cents.
    pub line_total_cents: u64,
}

/// A payment as a receipt shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentSummary {
    /// The method.
    pub method: PaymentMethod,
    /// The gateway's transaction id.
    pub transaction_id: String,
    /// For cards: the network.
    pub card_brand: Option<String>,
    /// For cards: the last four digits.
    pub card_last4: Option<String>,
}

/// Reads an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct GetOrder {
    /// The order's id.
    #[validate(custom(function = "rules::order_id_format"))]
    #[schemars(regex(pattern = rules::ORDER_ID_PATTERN))]
    pub order_id: String,
}

/// Cancels a placed order: releases its stock and refunds its payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct CancelOrder {
    /// The order's id.
    #[validate(custom(function = "rules::order_id_format"))]
    #[schemars(regex(pattern = rules::ORDER_ID_PATTERN))]
    pub order_id: String,
    /// Why, for the record.
    #[validate(length(max = 200))]
    pub reason: Option<String>,
}

/// What `cancel_order` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {
    /// The order's id.
    pub order_id: String,
    /// What was refunded.
    pub refunded: Money,
    /// Units put back in stock.
    pub released_units: u64,
}

natsrpc::request!(CreateOrder => OrderReceipt, service = "ecommerce", endpoint = "create_order", idempotent = true, schema);
natsrpc::request!(GetOrder => OrderReceipt, service = "ecommerce", endpoint = "get_order", idempotent = true, schema);
natsrpc::request!(CancelOrder => OrderCancelled, service = "ecommerce", endpoint = "cancel_order", schema);
