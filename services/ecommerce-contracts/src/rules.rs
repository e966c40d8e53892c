//! The validation rules of the e-commerce contracts, and the small catalogs they check against
//! (countries, currencies, discount codes).
//!
//! Struct-level rules name the field they are about (with [`natsrpc::validation::field_error`]), so
//! a violation's path points at `payment.amount.amount_cents`, not at the whole order.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use natsrpc::validation::field_error;
use regex::Regex;
use validator::ValidationError;

use super::{Address, Card, CreateOrder, PaymentMethod};

#[allow(clippy::expect_used)] // constant patterns, checked by the tests below
fn pattern(source: &str) -> Regex {
    Regex::new(source).expect("a valid constant pattern")
}

/// `ord_` and 6 to 60 letters, digits, `_` or `-`.
pub static ORDER_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^ord_[A-Za-z0-9_-]{6,60}$"));
/// 3 to 32 capital letters, digits or `-`, starting with a letter or digit.
pub static SKU: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[A-Z0-9][A-Z0-9-]{2,31}$"));
/// E.164: `+`, a non-zero digit, then 6 to 14 digits.
pub static PHONE: LazyLock<Regex> = LazyLock::new(|| pattern(r"^\+[1-9][0-9]{6,14}$"));
/// 4 to 16 capital letters or digits.
pub static DISCOUNT_CODE: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[A-Z0-9]{4,16}$"));
/// 3 or 4 digits.
pub static CVC: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[0-9]{3,4}$"));

/// Countries the shop ships to, with the format of their postal codes.
pub static COUNTRIES: LazyLock<BTreeMap<&'static str, Regex>> = LazyLock::new(|| {
    [
        ("AT", r"^[0-9]{4}$"),
        ("BE", r"^[0-9]{4}$"),
        ("CA", r"^[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]$"),
        ("CH", r"^[0-9]{4}$"),
        ("DE", r"^[0-9]{5}$"),
        ("DK", r"^[0-9]{4}$"),
        ("ES", r"^[0-9]{5}$"),
        ("FR", r"^[0-9]{5}$"),
        ("GB", r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$"),
        ("IE", r"^[A-Z][0-9]{2} ?[A-Z0-9]{4}$"),
        ("IT", r"^[0-9]{5}$"),
        ("JP", r"^[0-9]{3}-[0-9]{4}$"),
        ("NL", r"^[0-9]{4} ?[A-Z]{2}$"),
        ("PL", r"^[0-9]{2}-[0-9]{3}$"),
        ("SE", r"^[0-9]{3} ?[0-9]{2}$"),
        ("US", r"^[0-9]{5}(-[0-9]{4})?$"),
    ]
    .into_iter()
    .map(|(country, format)| (country, pattern(format)))
    .collect()
});

/// Countries whose banks take SEPA transfers.
pub const SEPA_COUNTRIES: &[&str] = &["AT", "BE", "CH", "DE", "DK", "ES", "FR", "IE", "IT", "NL", "PL", "SE"];

/// Currencies the shop takes.
pub const CURRENCIES: &[&str] = &["AUD", "CAD", "CHF", "DKK", "EUR", "GBP", "JPY", "PLN", "SEK", "USD"];

/// The discount a code gives on a subtotal, in cents, or `None` for an unknown code.
pub fn discount(code: &str, subtotal_cents: u64) -> Option<u64> {
    match code {
        "SAVE10" => Some(subtotal_cents / 10),
        "SAVE25" => Some(subtotal_cents / 4),
        "WELCOME5" => Some(subtotal_cents.min(500)),
        "NOTHING" => Some(0),
        _ => None,
    }
}

/// Quantity times unit price, summed; saturating, since invalid input is checked too.
pub fn subtotal_cents(order: &CreateOrder) -> u64 {
    order.items.iter().fold(0u64, |sum, item| {
        sum.saturating_add(item.unit_price.amount_cents.saturating_mul(u64::from(item.quantity)))
    })
}

/// The amount the payment must be: subtotal minus the discount (an unknown code gives none).
pub fn amount_due_cents(order: &CreateOrder) -> u64 {
    let subtotal = subtotal_cents(order);
    let discount = order.discount_code.as_deref().and_then(|code| discount(code, subtotal)).unwrap_or(0);
    subtotal - discount.min(subtotal)
}

/// A country the shop ships to.
pub fn supported_country(country: &str) -> Result<(), ValidationError> {
    if COUNTRIES.contains_key(country) {
        Ok(())
    } else {
        Err(ValidationError::new("unsupported_country")
            .with_message("is not an ISO 3166-1 code of a country the shop ships to".into()))
    }
}

/// A currency the shop takes.
pub fn supported_currency(currency: &str) -> Result<(), ValidationError> {
    if CURRENCIES.contains(&currency) {
        Ok(())
    } else {
        Err(ValidationError::new("unsupported_currency")
            .with_message("is not a supported ISO 4217 currency".into()))
    }
}

/// At most 10 options, keys up to 32 and values up to 64 characters.
pub fn options_within_limits(options: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    let too_long = options.iter().any(|(key, value)| key.chars().count() > 32 || value.chars().count() > 64);
    if options.len() > 10 {
        Err(ValidationError::new("too_many_options").with_message("at most 10 options".into()))
    } else if too_long {
        Err(ValidationError::new("option_too_long")
            .with_message("an option's key is up to 32 characters, its value up to 64".into()))
    } else {
        Ok(())
    }
}

/// 12 to 19 digits (spaces between groups allowed) that pass the Luhn check.
pub fn luhn_valid(number: &str) -> Result<(), ValidationError> {
    let digits: Vec<u32> =
        number.chars().filter(|c| *c != ' ').map(|c| c.to_digit(10).unwrap_or(u32::MAX)).collect();
    if !(12..=19).contains(&digits.len()) || digits.contains(&u32::MAX) {
        return Err(ValidationError::new("card_number_format").with_message("must be 12 to 19 digits".into()));
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
        .sum();
    if sum.is_multiple_of(10) {
        Ok(())
    } else {
        Err(ValidationError::new("luhn").with_message("is not a valid card number (Luhn check)".into()))
    }
}

/// The postal code has its country's format.
pub fn postal_code_fits_country(address: &Address) -> Result<(), ValidationError> {
    match COUNTRIES.get(address.country.as_str()) {
        Some(format) if !format.is_match(&address.postal_code) => Err(field_error(
            "postal_code",
            "postal_code_format",
            "is not a postal code of the address's country",
        )),
        // An unknown country is reported on `country` itself.
        _ => Ok(()),
    }
}

/// The card is valid through the end of its expiry month.
pub fn card_not_expired(card: &Card) -> Result<(), ValidationError> {
    let today = time::OffsetDateTime::now_utc().date();
    let now = (today.year(), u8::from(today.month()));
    if (i32::from(card.expiry_year), card.expiry_month) < now {
        Err(field_error("expiry_year", "card_expired", "the card has expired"))
    } else {
        Ok(())
    }
}

/// The payment amount equals the items' total minus the discount, to the cent.
pub fn amount_matches_items(order: &CreateOrder) -> Result<(), ValidationError> {
    let due = amount_due_cents(order);
    if order.payment.amount.amount_cents == due {
        return Ok(());
    }
    let mut error = field_error(
        "payment.amount.amount_cents",
        "amount_mismatch",
        format!("the items come to {due} cents after the discount"),
    );
    error.add_param("expected".into(), &due);
    Err(error)
}

/// Every price is in the payment's currency.
pub fn one_currency(order: &CreateOrder) -> Result<(), ValidationError> {
    let currency = &order.payment.amount.currency;
    match order.items.iter().position(|item| &item.unit_price.currency != currency) {
        Some(_) => Err(field_error(
            "payment.amount.currency",
            "currency_mismatch",
            "every item must be priced in the payment's currency",
        )),
        None => Ok(()),
    }
}

/// A card for card payments, and no card otherwise.
pub fn card_matches_method(order: &CreateOrder) -> Result<(), ValidationError> {
    match (order.payment.method, &order.payment.card) {
        (PaymentMethod::Card, None) => {
            Err(field_error("payment.card", "card_required", "a card payment needs the card's details"))
        }
        (PaymentMethod::Paypal | PaymentMethod::BankTransfer, Some(_)) => {
            Err(field_error("payment.card", "card_not_allowed", "card details are only for card payments"))
        }
        _ => Ok(()),
    }
}

/// The billing country is one the payment method serves: bank transfers only in SEPA countries.
pub fn billing_country_supports_method(order: &CreateOrder) -> Result<(), ValidationError> {
    let country = order.customer.billing_address.country.as_str();
    if order.payment.method == PaymentMethod::BankTransfer && !SEPA_COUNTRIES.contains(&country) {
        return Err(field_error(
            "customer.billing_address.country",
            "unsupported_for_payment_method",
            "bank transfers are only available for billing addresses in SEPA countries",
        ));
    }
    Ok(())
}

/// The discount code is in the catalog.
pub fn discount_code_known(order: &CreateOrder) -> Result<(), ValidationError> {
    match order.discount_code.as_deref() {
        Some(code) if DISCOUNT_CODE.is_match(code) && discount(code, 0).is_none() => {
            Err(field_error("discount_code", "unknown_discount_code", "is not a discount code"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile_and_mean_what_they_say() {
        assert!(ORDER_ID.is_match("ord_2026-11-25_000042"));
        assert!(!ORDER_ID.is_match("order-1"));
        assert!(SKU.is_match("SKU-00042") && !SKU.is_match("sku-1"));
        assert!(PHONE.is_match("+4930123456") && !PHONE.is_match("030 123456"));
        assert_eq!(COUNTRIES.len(), 16);
        assert!(COUNTRIES["GB"].is_match("SW1A 1AA") && COUNTRIES["US"].is_match("94103-1234"));
        assert!(!COUNTRIES["DE"].is_match("1011"));
    }

    #[test]
    fn luhn_accepts_test_cards_and_refuses_typos() {
        assert!(luhn_valid("4242 4242 4242 4242").is_ok());
        assert!(luhn_valid("5555555555554444").is_ok());
        assert_eq!(luhn_valid("4242424242424241").unwrap_err().code, "luhn");
        assert_eq!(luhn_valid("4242-4242").unwrap_err().code, "card_number_format");
    }
}
