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
pub const ORDER_ID_PATTERN: &str = r"^ord_[A-Za-z0-9_-]{6,60}$";
/// 3 to 32 capital letters, digits or `-`, starting with a letter or digit.
pub const SKU_PATTERN: &str = r"^[A-Z0-9][A-Z0-9-]{2,31}$";
/// E.164: `+`, a non-zero digit, then 6 to 14 digits.
pub const PHONE_PATTERN: &str = r"^\+[1-9][0-9]{6,14}$";
/// 4 to 16 capital letters or digits.
pub const DISCOUNT_CODE_PATTERN: &str = r"^[A-Z0-9]{4,16}$";
/// 3 or 4 digits.
pub const CVC_PATTERN: &str = r"^[0-9]{3,4}$";

// The formats are written twice: as patterns, which the JSON Schemas publish and the tests hold the
// checks to, and as the plain byte checks below, which validation runs. A regex search was a third
// of the time of validating an order (callgrind), for formats a loop over bytes decides.

/// [`ORDER_ID_PATTERN`] as a regex.
pub static ORDER_ID: LazyLock<Regex> = LazyLock::new(|| pattern(ORDER_ID_PATTERN));
/// [`SKU_PATTERN`] as a regex.
pub static SKU: LazyLock<Regex> = LazyLock::new(|| pattern(SKU_PATTERN));
/// [`PHONE_PATTERN`] as a regex.
pub static PHONE: LazyLock<Regex> = LazyLock::new(|| pattern(PHONE_PATTERN));
/// [`DISCOUNT_CODE_PATTERN`] as a regex.
pub static DISCOUNT_CODE: LazyLock<Regex> = LazyLock::new(|| pattern(DISCOUNT_CODE_PATTERN));
/// [`CVC_PATTERN`] as a regex.
pub static CVC: LazyLock<Regex> = LazyLock::new(|| pattern(CVC_PATTERN));

/// Countries the shop ships to, with the format of their postal codes (the specification that
/// [`POSTAL_CODES`] follows).
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

/// The countries of [`COUNTRIES`], in order, with the shapes their postal codes take (see [`fits`]).
pub const POSTAL_CODES: &[(&str, &[&str])] = &[
    ("AT", &["9999"]),
    ("BE", &["9999"]),
    ("CA", &["A9A 9A9", "A9A9A9"]),
    ("CH", &["9999"]),
    ("DE", &["99999"]),
    ("DK", &["9999"]),
    ("ES", &["99999"]),
    ("FR", &["99999"]),
    ("GB", &["A9 9AA", "A99AA", "A9X 9AA", "A9X9AA", "AA9 9AA", "AA99AA", "AA9X 9AA", "AA9X9AA"]),
    ("IE", &["A99 XXXX", "A99XXXX"]),
    ("IT", &["99999"]),
    ("JP", &["999-9999"]),
    ("NL", &["9999 AA", "9999AA"]),
    ("PL", &["99-999"]),
    ("SE", &["999 99", "99999"]),
    ("US", &["99999", "99999-9999"]),
];

/// Whether `value` has `shape`, byte for byte: `9` a digit, `A` a capital letter, `X` either,
/// anything else itself.
pub fn fits(value: &str, shape: &str) -> bool {
    value.len() == shape.len()
        && value.bytes().zip(shape.bytes()).all(|(byte, wanted)| match wanted {
            b'9' => byte.is_ascii_digit(),
            b'A' => byte.is_ascii_uppercase(),
            b'X' => byte.is_ascii_uppercase() || byte.is_ascii_digit(),
            literal => byte == literal,
        })
}

/// The postal code shapes of a country the shop ships to.
pub fn postal_code_shapes(country: &str) -> Option<&'static [&'static str]> {
    POSTAL_CODES.binary_search_by(|(known, _)| (*known).cmp(country)).ok().map(|at| POSTAL_CODES[at].1)
}

/// Whether every byte is in `class` and there are `min` to `max` of them.
fn run(value: &[u8], min: usize, max: usize, class: impl Fn(u8) -> bool) -> bool {
    (min..=max).contains(&value.len()) && value.iter().all(|byte| class(*byte))
}

fn upper_or_digit(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

/// [`ORDER_ID_PATTERN`].
pub fn is_order_id(value: &str) -> bool {
    value.strip_prefix("ord_").is_some_and(|rest| {
        run(rest.as_bytes(), 6, 60, |byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    })
}

/// [`SKU_PATTERN`].
pub fn is_sku(value: &str) -> bool {
    match value.as_bytes().split_first() {
        Some((first, rest)) => upper_or_digit(*first) && run(rest, 2, 31, |b| upper_or_digit(b) || b == b'-'),
        None => false,
    }
}

/// [`PHONE_PATTERN`].
pub fn is_phone(value: &str) -> bool {
    match value.as_bytes() {
        [b'+', b'1'..=b'9', rest @ ..] => run(rest, 6, 14, |byte| byte.is_ascii_digit()),
        _ => false,
    }
}

/// [`DISCOUNT_CODE_PATTERN`].
pub fn is_discount_code(value: &str) -> bool {
    run(value.as_bytes(), 4, 16, upper_or_digit)
}

/// [`CVC_PATTERN`].
pub fn is_cvc(value: &str) -> bool {
    run(value.as_bytes(), 3, 4, |byte| byte.is_ascii_digit())
}

fn format_rule(ok: bool, code: &'static str, message: &'static str) -> Result<(), ValidationError> {
    if ok { Ok(()) } else { Err(ValidationError::new(code).with_message(message.into())) }
}

/// An order id: [`ORDER_ID_PATTERN`].
pub fn order_id_format(value: &str) -> Result<(), ValidationError> {
    format_rule(
        is_order_id(value),
        "order_id_format",
        "must be ord_ followed by 6 to 60 letters, digits, _ or -",
    )
}

/// An item's code: [`SKU_PATTERN`].
pub fn sku_format(value: &str) -> Result<(), ValidationError> {
    format_rule(is_sku(value), "sku_format", "must be 3 to 32 capital letters, digits or -")
}

/// A phone number: [`PHONE_PATTERN`].
pub fn phone_format(value: &str) -> Result<(), ValidationError> {
    format_rule(is_phone(value), "phone_format", "must be in E.164 form, such as +4930123456")
}

/// A discount code's form: [`DISCOUNT_CODE_PATTERN`].
pub fn discount_code_format(value: &str) -> Result<(), ValidationError> {
    format_rule(is_discount_code(value), "discount_code_format", "must be 4 to 16 capital letters or digits")
}

/// A card's security code: [`CVC_PATTERN`].
pub fn cvc_format(value: &str) -> Result<(), ValidationError> {
    format_rule(is_cvc(value), "cvc_format", "must be 3 or 4 digits")
}

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
    if postal_code_shapes(country).is_some() {
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
    match postal_code_shapes(&address.country) {
        Some(shapes) if !shapes.iter().any(|shape| fits(&address.postal_code, shape)) => Err(field_error(
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
        Some(code) if is_discount_code(code) && discount(code, 0).is_none() => {
            Err(field_error("discount_code", "unknown_discount_code", "is not a discount code"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Strings near a pattern: matching ones (from the pattern itself), and ones from the bytes that
    /// matter around it (cases, digits, separators, non-ASCII, control characters) of any length.
    fn near(pattern: &str) -> impl Strategy<Value = String> {
        let matching = || {
            proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$'))
                .expect("a pattern proptest can generate from")
        };
        let mutated =
            (matching(), any::<prop::sample::Index>(), "[ -~äß€\\n\\t]").prop_map(|(value, at, with)| {
                let chars: Vec<char> = value.chars().collect();
                if chars.is_empty() {
                    return with;
                }
                let at = at.index(chars.len());
                chars[..at].iter().collect::<String>() + &with + &chars[at + 1..].iter().collect::<String>()
            });
        prop_oneof![
            matching(),
            mutated,
            "[A-Za-z0-9 +_-]{0,70}",
            "ord_[A-Za-z0-9_äé-]{0,64}\\n?",
            "[ -~äß€\\n]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn byte_checks_decide_as_the_published_patterns(
            order_id in near(ORDER_ID_PATTERN),
            sku in near(SKU_PATTERN),
            phone in near(PHONE_PATTERN),
            discount_code in near(DISCOUNT_CODE_PATTERN),
            cvc in near(CVC_PATTERN),
        ) {
            prop_assert_eq!(is_order_id(&order_id), ORDER_ID.is_match(&order_id), "{:?}", order_id);
            prop_assert_eq!(is_sku(&sku), SKU.is_match(&sku), "{:?}", sku);
            prop_assert_eq!(is_phone(&phone), PHONE.is_match(&phone), "{:?}", phone);
            prop_assert_eq!(is_discount_code(&discount_code), DISCOUNT_CODE.is_match(&discount_code), "{:?}", discount_code);
            prop_assert_eq!(is_cvc(&cvc), CVC.is_match(&cvc), "{:?}", cvc);
        }

        #[test]
        fn postal_code_shapes_decide_as_the_published_patterns(
            country in prop::sample::select(POSTAL_CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>()),
            code in prop_oneof![
                "[0-9A-Z]{1,4}[ -]?[0-9A-Z]{1,4}",
                "[0-9]{2,5}[ -]?[0-9]{0,4}",
                "[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}",
                "[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]",
                "[ -~ä]{0,11}",
            ],
        ) {
            let fits_a_shape = postal_code_shapes(country).is_some_and(|shapes| shapes.iter().any(|shape| fits(&code, shape)));
            prop_assert_eq!(fits_a_shape, COUNTRIES[country].is_match(&code), "{} {:?}", country, code);
        }
    }

    #[test]
    fn every_country_has_shapes_and_a_pattern() {
        let shaped: Vec<&str> = POSTAL_CODES.iter().map(|(country, _)| *country).collect();
        let patterned: Vec<&str> = COUNTRIES.keys().copied().collect();
        assert_eq!(shaped, patterned, "the same countries, in order (a binary search needs the order)");
        assert!(postal_code_shapes("ZZ").is_none() && supported_country("ZZ").is_err());
    }

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
