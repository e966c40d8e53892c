//! A deterministic, seeded generator of requests for every endpoint: valid ones in three sizes,
//! and invalid ones that each break one named rule and say where the violation must point.
//! The benchmark draws its load from here; the tests and the checked-in samples too.

use std::collections::BTreeMap;

use natsrpc::testing::{Invalid, Sample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{
    Address, CancelOrder, Card, CreateOrder, Customer, GetOrder, GetStock, Gift, LineItem, Money, Payment,
    PaymentMethod, Recipient, ReserveInventory, Restock, StockLine, rules,
};
use crate::domain::catalog_sku;

/// How big a generated request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 1 to 3 items, no options or gifts.
    Small,
    /// 5 to 15 items, some with options and gifts.
    Medium,
    /// 60 to 100 items, most with options, many gifts.
    Large,
}

/// Generates requests from a seed: the same seed gives the same requests.
#[derive(Debug)]
pub struct Payloads {
    rng: StdRng,
    skus: u32,
    next_id: u64,
}

/// A Luhn-valid test card number.
pub const TEST_CARD: &str = "4242424242424242";

impl Payloads {
    /// A generator over a catalog of `skus` items (`SKU-00000`...).
    pub fn new(seed: u64, skus: u32) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), skus: skus.max(1), next_id: 0 }
    }

    /// A fresh order id.
    pub fn order_id(&mut self) -> String {
        self.next_id += 1;
        format!("ord_{:016x}{:08}", self.rng.random::<u64>(), self.next_id)
    }

    /// A valid order of the given size, paid by card.
    pub fn create_order(&mut self, size: Size) -> CreateOrder {
        let count = match size {
            Size::Small => self.rng.random_range(1..=3),
            Size::Medium => self.rng.random_range(5..=15),
            Size::Large => self.rng.random_range(60..=100),
        };
        let mut items: Vec<LineItem> = Vec::with_capacity(count);
        for i in 0..count {
            let sku = catalog_sku((self.rng.random_range(0..self.skus) + i as u32) % self.skus);
            let options = (size != Size::Small && self.rng.random_bool(0.5)).then(|| {
                BTreeMap::from([
                    ("size".to_string(), "M".to_string()),
                    ("colour".to_string(), "teal".to_string()),
                ])
            });
            let gift =
                (size == Size::Large || (size == Size::Medium && self.rng.random_bool(0.2))).then(|| Gift {
                    message: "Happy birthday!".into(),
                    recipient: Recipient { name: "Grace Hopper".into(), address: self.address("GB") },
                });
            items.push(LineItem {
                sku,
                quantity: self.rng.random_range(1..=3),
                unit_price: Money {
                    amount_cents: self.rng.random_range(199..=19_999),
                    currency: "EUR".into(),
                },
                options,
                gift,
            });
        }
        let discount_code = self.rng.random_bool(0.3).then(|| "SAVE10".to_string());
        let mut order = CreateOrder {
            order_id: self.order_id(),
            customer: Customer {
                id: format!("cus_{}", self.rng.random_range(1..100_000)),
                name: "Ada Lovelace".into(),
                email: "ada@example.com".into(),
                phone: "+4930123456".into(),
                shipping_address: self.address("DE"),
                billing_address: self.address("DE"),
            },
            items,
            payment: Payment {
                method: PaymentMethod::Card,
                amount: Money { amount_cents: 0, currency: "EUR".into() },
                card: Some(Card {
                    number: TEST_CARD.into(),
                    holder: "ADA LOVELACE".into(),
                    expiry_month: 12,
                    expiry_year: 2099,
                    cvc: "123".into(),
                }),
            },
            discount_code,
        };
        order.payment.amount.amount_cents = rules::amount_due_cents(&order);
        order
    }

    /// A valid order of exactly `items` distinct items (up to the catalog's size): what an
    /// overview fans out over, one stock lookup per item.
    pub fn order_of(&mut self, items: usize) -> CreateOrder {
        let mut order = self.create_order(Size::Small);
        let start = self.rng.random_range(0..self.skus);
        let count = u32::try_from(items).unwrap_or(u32::MAX).clamp(1, self.skus);
        order.items = (0..count)
            .map(|i| LineItem {
                sku: catalog_sku((start + i) % self.skus),
                quantity: 1,
                unit_price: Money {
                    amount_cents: self.rng.random_range(199..=19_999),
                    currency: "EUR".into(),
                },
                options: None,
                gift: None,
            })
            .collect();
        order.payment.amount.amount_cents = rules::amount_due_cents(&order);
        order
    }

    fn address(&mut self, country: &str) -> Address {
        let postal_code = match country {
            "GB" => "SW1A 1AA".to_string(),
            _ => format!("{:05}", self.rng.random_range(10_000..99_999)),
        };
        Address {
            line1: format!("{} Example Street", self.rng.random_range(1..200)),
            line2: None,
            city: "Berlin".into(),
            postal_code,
            country: country.into(),
        }
    }

    /// Orders that each break one rule, covering every rule of `CreateOrder`.
    pub fn invalid_create_orders(&mut self) -> Vec<Invalid<CreateOrder>> {
        let base = self.create_order(Size::Medium);
        let mut gifted = base.clone();
        gifted.items[0].gift = Some(Gift {
            message: "Hi".into(),
            recipient: Recipient { name: "Grace".into(), address: self.address("GB") },
        });
        type Break = fn(&mut CreateOrder);
        let cases: Vec<(&str, &'static str, Break)> = vec![
            ("order_id", "order_id_format", |o| o.order_id = "order-1".into()),
            ("customer.id", "length", |o| o.customer.id.clear()),
            ("customer.name", "length", |o| o.customer.name = "x".repeat(101)),
            ("customer.email", "email", |o| o.customer.email = "ada.example.com".into()),
            ("customer.phone", "phone_format", |o| o.customer.phone = "030 123456".into()),
            ("customer.shipping_address.country", "unsupported_country", |o| {
                o.customer.shipping_address.country = "XX".into()
            }),
            ("customer.shipping_address.postal_code", "postal_code_format", |o| {
                o.customer.shipping_address.postal_code = "1011".into()
            }),
            ("customer.shipping_address.line1", "length", |o| o.customer.shipping_address.line1.clear()),
            ("customer.shipping_address.line2", "length", |o| {
                o.customer.shipping_address.line2 = Some("x".repeat(101))
            }),
            ("customer.shipping_address.city", "length", |o| o.customer.shipping_address.city.clear()),
            ("customer.billing_address.postal_code", "length", |o| {
                o.customer.billing_address.postal_code = "1".into()
            }),
            ("items", "length", |o| o.items.clear()),
            ("items[0].sku", "sku_format", |o| o.items[0].sku = "sku 1".into()),
            ("items[0].quantity", "range", |o| o.items[0].quantity = 0),
            ("items[0].unit_price.currency", "unsupported_currency", |o| {
                o.items[0].unit_price.currency = "EURO".into()
            }),
            ("items[0].unit_price.amount_cents", "range", |o| {
                o.items[0].unit_price.amount_cents = 10_000_000_001
            }),
            ("items[0].options", "too_many_options", |o| {
                o.items[0].options = Some((0..11).map(|i| (format!("k{i}"), "v".to_string())).collect())
            }),
            ("items[0].gift.message", "length", |o| {
                if let Some(gift) = o.items[0].gift.as_mut() {
                    gift.message = "x".repeat(201)
                }
            }),
            ("items[0].gift.recipient.address.country", "unsupported_country", |o| {
                if let Some(gift) = o.items[0].gift.as_mut() {
                    gift.recipient.address.country = "ZZ".into()
                }
            }),
            ("payment.card.number", "luhn", |o| {
                if let Some(card) = o.payment.card.as_mut() {
                    card.number = "4242424242424241".into()
                }
            }),
            ("payment.card.expiry_year", "card_expired", |o| {
                if let Some(card) = o.payment.card.as_mut() {
                    card.expiry_year = 2020
                }
            }),
            ("payment.card.expiry_month", "range", |o| {
                if let Some(card) = o.payment.card.as_mut() {
                    card.expiry_month = 13
                }
            }),
            ("payment.card.cvc", "cvc_format", |o| {
                if let Some(card) = o.payment.card.as_mut() {
                    card.cvc = "12".into()
                }
            }),
            ("payment.card.holder", "length", |o| {
                if let Some(card) = o.payment.card.as_mut() {
                    card.holder.clear()
                }
            }),
            ("payment.amount.amount_cents", "amount_mismatch", |o| o.payment.amount.amount_cents += 1),
            ("payment.card", "card_required", |o| o.payment.card = None),
            ("discount_code", "discount_code_format", |o| o.discount_code = Some("save10".into())),
        ];
        let mut out: Vec<Invalid<CreateOrder>> = cases
            .into_iter()
            .map(|(path, code, break_it)| {
                let mut request = gifted.clone();
                break_it(&mut request);
                if code != "amount_mismatch" {
                    // Keep the amount right, so that only the broken rule is reported.
                    request.payment.amount.amount_cents = rules::amount_due_cents(&request);
                }
                Invalid::new(request, path, code)
            })
            .collect();
        // Rules that need two fields changed together to break only themselves.
        let mut currency = gifted.clone();
        for item in &mut currency.items {
            item.unit_price.currency = "USD".into();
        }
        out.push(Invalid::new(currency, "payment.amount.currency", "currency_mismatch"));
        let mut transfer = gifted.clone();
        transfer.payment.method = PaymentMethod::BankTransfer;
        transfer.payment.card = None;
        transfer.customer.billing_address = Address { postal_code: "94103".into(), ..self.address("US") };
        out.push(Invalid::new(
            transfer,
            "customer.billing_address.country",
            "unsupported_for_payment_method",
        ));
        let mut paypal = gifted.clone();
        paypal.payment.method = PaymentMethod::Paypal;
        out.push(Invalid::new(paypal, "payment.card", "card_not_allowed"));
        let mut unknown = gifted;
        unknown.discount_code = Some("FREEBIE".into());
        unknown.payment.amount.amount_cents = rules::subtotal_cents(&unknown);
        out.push(Invalid::new(unknown, "discount_code", "unknown_discount_code"));
        out
    }

    /// A valid and an invalid request for every endpoint.
    pub fn samples(&mut self) -> Vec<Sample> {
        let order = self.create_order(Size::Medium);
        let mut wrong_amount = order.clone();
        wrong_amount.payment.amount.amount_cents += 1;
        let mut bad_reservation = self.reserve_inventory();
        bad_reservation.lines[0].quantity = 0;
        let bad_restock = Restock { quantity: 0, ..self.restock() };
        let bad_id = GetOrder { order_id: "order-42".into() };
        let bad_cancel = CancelOrder { order_id: order.order_id.clone(), reason: Some("x".repeat(201)) };
        vec![
            Sample::new(
                "create_order",
                &order,
                Invalid::new(wrong_amount, "payment.amount.amount_cents", "amount_mismatch"),
            ),
            Sample::new(
                "get_order",
                &self.get_order(&order.order_id),
                Invalid::new(bad_id, "order_id", "order_id_format"),
            ),
            Sample::new(
                "cancel_order",
                &self.cancel_order(&order.order_id),
                Invalid::new(bad_cancel, "reason", "length"),
            ),
            Sample::new(
                "reserve_inventory",
                &self.reserve_inventory(),
                Invalid::new(bad_reservation, "lines[0].quantity", "range"),
            ),
            Sample::new("restock", &self.restock(), Invalid::new(bad_restock, "quantity", "range")),
            Sample::new(
                "get_stock",
                &GetStock { sku: self.restock().sku },
                Invalid::new(GetStock { sku: "sku-1".into() }, "sku", "sku_format"),
            ),
        ]
    }

    /// A valid `get_order` for `order_id`.
    pub fn get_order(&mut self, order_id: &str) -> GetOrder {
        GetOrder { order_id: order_id.to_string() }
    }

    /// A valid `cancel_order` for `order_id`.
    pub fn cancel_order(&mut self, order_id: &str) -> CancelOrder {
        CancelOrder { order_id: order_id.to_string(), reason: Some("changed my mind".into()) }
    }

    /// A valid reservation of 1 to 5 lines.
    pub fn reserve_inventory(&mut self) -> ReserveInventory {
        let lines = (0..self.rng.random_range(1..=5))
            .map(|i| StockLine {
                sku: catalog_sku((self.rng.random_range(0..self.skus) + i) % self.skus),
                quantity: self.rng.random_range(1..=3),
            })
            .collect();
        ReserveInventory { reservation_id: format!("cart_{}", self.rng.random::<u32>()), lines }
    }

    /// A valid restock of one item.
    pub fn restock(&mut self) -> Restock {
        Restock {
            sku: catalog_sku(self.rng.random_range(0..self.skus)),
            quantity: self.rng.random_range(1..=100),
        }
    }
}

/// Cart `i` of a contention run: every cart wants one unit of the catalog's first item, and every
/// third cart two units of the second as well, so that carts compete for stock and a reservation
/// that is all-or-nothing can be told from one that is not.
pub fn contended_cart(i: usize) -> ReserveInventory {
    let mut lines = vec![StockLine { sku: catalog_sku(0), quantity: 1 }];
    if i.is_multiple_of(3) {
        lines.push(StockLine { sku: catalog_sku(1), quantity: 2 });
    }
    ReserveInventory { reservation_id: format!("cart_{i}"), lines }
}
