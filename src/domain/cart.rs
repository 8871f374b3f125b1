//! Carts as the checkout sends them, validated and bounded: a cart that
//! breaks a limit is BAD_USER_INPUT on the offending path, never priced.

use super::validation::{self as v, Invalid, MAX_AMOUNT, path};

/// Most lines in one cart.
pub const MAX_LINES: usize = 200;
/// Most coupon codes in one cart.
pub const MAX_CODES: usize = 10;
/// Most units on one line.
pub const MAX_QUANTITY: i32 = 10_000;
/// Most categories on one line.
pub const MAX_LINE_CATEGORIES: usize = 50;
/// Longest coupon code accepted as typed (longer cannot be a code).
pub const MAX_TYPED_CODE_CHARS: usize = 100;

/// A cart line as given.
#[derive(Debug, Clone, PartialEq)]
pub struct LineDraft {
    pub id: String,
    pub product_id: String,
    pub category_ids: Vec<String>,
    pub brand_id: Option<String>,
    pub quantity: i32,
    pub unit_price: i64,
    pub rating: Option<f64>,
}

/// The customer as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDraft {
    pub id: String,
    pub segments: Vec<String>,
    pub review_count: i32,
    pub order_count: i32,
}

/// A cart as given.
#[derive(Debug, Clone, PartialEq)]
pub struct CartDraft {
    pub currency: String,
    pub customer: Option<CustomerDraft>,
    pub lines: Vec<LineDraft>,
    pub shipping_amount: i64,
    pub coupon_codes: Vec<String>,
}

/// A valid cart line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CartLine {
    /// Unique within the cart.
    pub id: String,
    pub product_id: String,
    /// Sorted, de-duplicated.
    pub category_ids: Vec<String>,
    pub brand_id: Option<String>,
    /// 1..=[`MAX_QUANTITY`].
    pub quantity: i32,
    /// Minor units before any promotion, 0..=10^12.
    pub unit_price: i64,
    /// Average review rating, 0..5.
    pub rating: Option<f64>,
}

impl CartLine {
    /// unit price x quantity (cannot overflow: both are bounded).
    pub fn subtotal(&self) -> i64 {
        self.unit_price * self.quantity as i64
    }
}

/// A valid customer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Customer {
    pub id: String,
    /// Sorted, de-duplicated.
    pub segments: Vec<String>,
    pub review_count: i32,
    /// Earlier orders; 0: this is the first.
    pub order_count: i32,
}

/// A valid cart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cart {
    /// Upper-case ISO 4217.
    pub currency: String,
    pub customer: Option<Customer>,
    pub lines: Vec<CartLine>,
    pub shipping_amount: i64,
    /// Trimmed as typed, duplicates (case-insensitive) removed, order kept.
    pub coupon_codes: Vec<String>,
}

impl Cart {
    /// Validates a cart; errors name the path under `field` (e.g. `cart`).
    pub fn new(field: &str, draft: &CartDraft) -> Result<Self, Invalid> {
        let currency = v::currency(&path(field, "currency"), &draft.currency)?;
        if draft.lines.len() > MAX_LINES {
            return Err(Invalid::new(
                path(field, "lines"),
                format!("a cart holds at most {MAX_LINES} lines"),
            ));
        }
        let mut lines: Vec<CartLine> = Vec::with_capacity(draft.lines.len());
        for (i, line) in draft.lines.iter().enumerate() {
            let at = || format!("{}[{i}]", path(field, "lines"));
            let line = validate_line(line).map_err(|e| e.under(&at()))?;
            if lines.iter().any(|l| l.id == line.id) {
                return Err(Invalid::new("id", "line ids must be unique within the cart").under(&at()));
            }
            lines.push(line);
        }
        let shipping_amount = draft.shipping_amount;
        if !(0..=MAX_AMOUNT).contains(&shipping_amount) {
            return Err(Invalid::new(
                path(field, "shippingAmount"),
                format!("must be between 0 and {MAX_AMOUNT}"),
            ));
        }
        if draft.coupon_codes.len() > MAX_CODES {
            return Err(Invalid::new(
                path(field, "couponCodes"),
                format!("a cart holds at most {MAX_CODES} coupon codes"),
            ));
        }
        let mut coupon_codes: Vec<String> = Vec::new();
        for (i, code) in draft.coupon_codes.iter().enumerate() {
            let code = code.trim();
            if code.is_empty() || code.chars().count() > MAX_TYPED_CODE_CHARS {
                return Err(Invalid::new(
                    format!("{}[{i}]", path(field, "couponCodes")),
                    format!("must be 1 to {MAX_TYPED_CODE_CHARS} characters"),
                ));
            }
            if !coupon_codes.iter().any(|c| c.eq_ignore_ascii_case(code)) {
                coupon_codes.push(code.to_owned());
            }
        }
        let customer = draft
            .customer
            .as_ref()
            .map(|c| validate_customer(c).map_err(|e| e.under(&path(field, "customer"))))
            .transpose()?;
        Ok(Self {
            currency,
            customer,
            lines,
            shipping_amount,
            coupon_codes,
        })
    }

    /// A fingerprint of the cart (SHA-256 of its validated form): a retry of
    /// an order must send the same cart.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        #[allow(clippy::expect_used)]
        let bytes = serde_json::to_vec(self).expect("a cart serialises: it holds strings and numbers only");
        sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Sum of the lines' subtotals.
    pub fn subtotal(&self) -> i64 {
        self.lines.iter().map(CartLine::subtotal).sum()
    }
}

fn sorted_set(field: &str, values: &[String], max: usize) -> Result<Vec<String>, Invalid> {
    if values.len() > max {
        return Err(Invalid::new(field, format!("must hold at most {max} values")));
    }
    let mut ids = v::identifiers(field, values)?;
    ids.sort();
    Ok(ids)
}

/// A valid line; errors name fields relative to the line.
fn validate_line(line: &LineDraft) -> Result<CartLine, Invalid> {
    if !(1..=MAX_QUANTITY).contains(&line.quantity) {
        return Err(Invalid::new(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    if !(0..=MAX_AMOUNT).contains(&line.unit_price) {
        return Err(Invalid::new(
            "unitPrice",
            format!("must be between 0 and {MAX_AMOUNT} minor units"),
        ));
    }
    Ok(CartLine {
        id: v::identifier("id", &line.id)?,
        product_id: v::identifier("productId", &line.product_id)?,
        category_ids: sorted_set("categoryIds", &line.category_ids, MAX_LINE_CATEGORIES)?,
        brand_id: line
            .brand_id
            .as_deref()
            .map(|b| v::identifier("brandId", b))
            .transpose()?,
        quantity: line.quantity,
        unit_price: line.unit_price,
        rating: line.rating.map(|r| v::rating("rating", r)).transpose()?,
    })
}

/// A valid customer; errors name fields relative to the customer.
fn validate_customer(c: &CustomerDraft) -> Result<Customer, Invalid> {
    if c.review_count < 0 {
        return Err(Invalid::new("reviewCount", "must not be negative"));
    }
    if c.order_count < 0 {
        return Err(Invalid::new("orderCount", "must not be negative"));
    }
    Ok(Customer {
        id: v::identifier("id", &c.id)?,
        segments: sorted_set("segments", &c.segments, super::promotion::MAX_SEGMENTS)?,
        review_count: c.review_count,
        order_count: c.order_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, quantity: i32, unit_price: i64) -> LineDraft {
        LineDraft {
            id: id.into(),
            product_id: "p".into(),
            category_ids: vec![],
            brand_id: None,
            quantity,
            unit_price,
            rating: None,
        }
    }

    fn cart(lines: Vec<LineDraft>) -> CartDraft {
        CartDraft {
            currency: "eur".into(),
            customer: None,
            lines,
            shipping_amount: 0,
            coupon_codes: vec![],
        }
    }

    #[test]
    fn bad_lines_name_their_path() {
        assert_eq!(
            Cart::new("cart", &cart(vec![line("a", 0, 1)])).unwrap_err().field,
            "cart.lines[0].quantity"
        );
        assert_eq!(
            Cart::new("cart", &cart(vec![line("a", 1, -1)])).unwrap_err().field,
            "cart.lines[0].unitPrice"
        );
        assert_eq!(
            Cart::new("cart", &cart(vec![line("a", 1, 1), line("a", 1, 1)]))
                .unwrap_err()
                .field,
            "cart.lines[1].id"
        );
        let many = (0..=MAX_LINES).map(|i| line(&i.to_string(), 1, 1)).collect();
        assert_eq!(Cart::new("cart", &cart(many)).unwrap_err().field, "cart.lines");
    }

    #[test]
    fn codes_are_deduplicated_case_insensitively_and_bounded() {
        let mut c = cart(vec![]);
        c.coupon_codes = vec![" abc ".into(), "ABC".into(), "x".into()];
        assert_eq!(Cart::new("cart", &c).unwrap().coupon_codes, vec!["abc", "x"]);
        c.coupon_codes = vec!["c".into(); MAX_CODES + 1];
        assert_eq!(Cart::new("cart", &c).unwrap_err().field, "cart.couponCodes");
    }
}
