//! previewPromotions without async-graphql's executor.
//!
//! A checkout sends the same preview document many times a second while a
//! cart changes. async-graphql validates that document every time, coerces
//! the cart through a value tree, builds a value tree of the answer and then
//! serialises it: most of a small preview's CPU. So a preview document
//! that only selects fields is compiled once, when
//! [`super::documents::Documents`] parses it, into a [`PreviewPlan`]; a
//! request for it then reads its cart straight from the request's JSON,
//! prices it with the resolver's own [`CartInput::preview`] and writes the
//! selected fields straight to JSON.
//!
//! A document is compiled only when async-graphql would accept it as it is:
//! one query operation, one `CartInput!` variable passed as `cart` to a lone
//! `previewPromotions`; below it only known fields, none with arguments or
//! directives, no fragments, no field and no response key twice; no
//! `AppliedPromotion.promotion` (it reads the database) and no `redemption`
//! (always null in a preview). A request takes the plan only when its
//! operation name matches and its variables are exactly the cart, read
//! strictly (no unknown field, no coercion of a single value into a list);
//! anything else goes through async-graphql, which answers or reports the
//! error as before. The API tests hold both paths' answers equal byte for
//! byte, errors included.

use std::fmt;

use async_graphql::parser::types::{BaseType, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{InputType, PathSegment, Pos, Response, ServerError};
use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::observe::chosen_operation;
use super::types::checkout::{CartInput, RejectionReason};
use crate::domain::engine::{Adjustment, Applied, PricedCart, PricedLine, Rejected};
use crate::error::AppError;

/// For each result type of a preview: the fields a plan writes, and the
/// ones it leaves to async-graphql (a document selecting one is not
/// compiled). The API tests hold this against the schema (every field of
/// these types is one or the other) and against [`PreviewPlan::compile`]
/// (every written field compiles, no excluded one does), so a field added
/// to the schema cannot be answered wrong by the compiled path.
pub const COVERAGE: &[(&str, &[&str], &[&str])] = &[
    (
        "PromotionResult",
        &[
            "currency",
            "subtotal",
            "discountTotal",
            "shippingAmount",
            "shippingDiscount",
            "total",
            "lines",
            "applied",
            "rejected",
        ],
        &["redemption"],
    ),
    (
        "LineResult",
        &[
            "lineId",
            "quantity",
            "unitPrice",
            "subtotal",
            "discount",
            "total",
            "adjustments",
        ],
        &[],
    ),
    ("LineAdjustment", &["promotionId", "couponCode", "amount"], &[]),
    (
        "AppliedPromotion",
        &["promotionId", "couponCode", "name", "amount"],
        &["promotion"],
    ),
    (
        "RejectedPromotion",
        &["promotionId", "couponCode", "reason", "message"],
        &[],
    ),
];

/// Bytes reserved for an answer: most fit.
const ANSWER_CAPACITY: usize = 16 * 1024;

/// A preview document, compiled.
#[derive(Debug)]
pub struct PreviewPlan {
    /// The operation's name, when it has one.
    operation: Option<String>,
    /// The variable that holds the cart.
    variable: String,
    /// previewPromotions' response key and place in the document.
    key: String,
    pos: Pos,
    result: Vec<Selected<ResultField>>,
}

impl PreviewPlan {
    /// The plan of `document`, when it is a preview this module can serve.
    pub fn compile(document: &ExecutableDocument) -> Option<Self> {
        if !document.fragments.is_empty() {
            return None;
        }
        let (operation, name) = chosen_operation(document, None)?;
        let [variable] = operation.variable_definitions.as_slice() else {
            return None;
        };
        let variable = &variable.node;
        let cart_type = &variable.var_type.node;
        if operation.ty != OperationType::Query
            || !operation.directives.is_empty()
            || !variable.directives.is_empty()
            || variable.default_value.is_some()
            || cart_type.nullable
            || !matches!(&cart_type.base, BaseType::Named(name) if name == "CartInput")
        {
            return None;
        }
        let [root] = operation.selection_set.node.items.as_slice() else {
            return None;
        };
        let Selection::Field(root) = &root.node else {
            return None;
        };
        let field = &root.node;
        let [(argument, value)] = field.arguments.as_slice() else {
            return None;
        };
        let passes_the_variable =
            matches!(&value.node, async_graphql_value::Value::Variable(v) if *v == variable.name.node);
        if field.name.node != "previewPromotions"
            || !field.directives.is_empty()
            || argument.node != "cart"
            || !passes_the_variable
        {
            return None;
        }
        Some(Self {
            operation: name,
            variable: variable.name.node.to_string(),
            key: field.response_key().node.to_string(),
            pos: root.pos,
            result: compile(&field.selection_set.node)?,
        })
    }

    /// The cart of a request for this plan's document, when the request is
    /// this plan's to serve: its operation name matches and its variables
    /// are exactly the cart, read strictly, with no NUL character in them.
    pub fn cart(&self, operation_name: Option<&str>, variables: Option<&RawValue>) -> Option<CartInput> {
        if operation_name.is_some_and(|name| Some(name) != self.operation.as_deref()) {
            return None;
        }
        let variables = variables?.get();
        // A NUL is refused, by execute's check, as for any other operation.
        if variables.contains("\\u0000") {
            return None;
        }
        let mut variables = serde_json::Deserializer::from_str(variables);
        let cart = OnlyCart(&self.variable).deserialize(&mut variables).ok()?;
        variables.end().ok()?;
        Some(cart)
    }

    /// The response body of a priced cart: `{"data":{<key>:{...}}}`.
    pub fn answer(&self, priced: &PricedCart) -> serde_json::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(ANSWER_CAPACITY);
        body.extend_from_slice(b"{\"data\":{");
        json(&self.key, &mut body)?;
        body.push(b':');
        object(&self.result, priced, &mut body)?;
        body.extend_from_slice(b"}}");
        Ok(body)
    }

    /// The response of a preview that failed, as async-graphql gives it: no
    /// data, and the error at previewPromotions.
    pub fn failure(&self, error: AppError) -> Response {
        let error = async_graphql::Error::from(error).into_server_error(self.pos);
        Response::from_errors(vec![ServerError {
            path: vec![PathSegment::Field(self.key.clone())],
            ..error
        }])
    }

    /// The operation's name in the document, if any.
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref()
    }
}

/// Reads variables that are exactly `{"<the cart's variable>": <cart>}`.
struct OnlyCart<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for OnlyCart<'_> {
    type Value = CartInput;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<CartInput, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OnlyCart<'_> {
    type Value = CartInput;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "an object holding ${} only", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CartInput, A::Error> {
        match map.next_key::<&'de str>()? {
            Some(name) if name == self.0 => {}
            _ => return Err(A::Error::custom(format_args!("expected ${} first", self.0))),
        }
        let cart = map.next_value()?;
        match map.next_key::<IgnoredAny>()? {
            None => Ok(cart),
            Some(_) => Err(A::Error::custom("expected no other variable")),
        }
    }
}

/// One selected field, after its response key written out: `"key":`.
#[derive(Debug)]
struct Selected<F> {
    key: Vec<u8>,
    field: Pick<F>,
}

/// What a selected field is: `__typename`, which every type has, or one of its own.
#[derive(Debug)]
enum Pick<F> {
    Typename,
    Field(F),
}

/// A field of one result type, and how to write it.
trait Field: Sized {
    /// The value the field is read from.
    type Of;
    /// The type's GraphQL name: what `__typename` gives.
    const TYPE_NAME: &'static str;
    /// The field named `name` selecting `set` (empty for a leaf); not `__typename`.
    fn pick(name: &str, set: &SelectionSet) -> Option<Self>;
    /// Writes the field's value in `of`.
    fn write(&self, of: &Self::Of, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

/// A selection set of plain fields, or None.
fn compile<F: Field>(set: &SelectionSet) -> Option<Vec<Selected<F>>> {
    let mut selected = Vec::with_capacity(set.items.len());
    let (mut names, mut keys) = (Vec::with_capacity(set.items.len()), Vec::with_capacity(set.items.len()));
    for item in &set.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        let (name, key) = (field.name.node.as_str(), field.response_key().node.as_str());
        if !field.arguments.is_empty() || !field.directives.is_empty() || names.contains(&name) || keys.contains(&key) {
            return None;
        }
        names.push(name);
        keys.push(key);
        let mut written = serde_json::to_vec(key).ok()?;
        written.push(b':');
        let set = &field.selection_set.node;
        let field = match name {
            "__typename" => leaf(set, Pick::Typename)?,
            _ => Pick::Field(F::pick(name, set)?),
        };
        selected.push(Selected { key: written, field });
    }
    (!selected.is_empty()).then_some(selected)
}

/// `field` when `set` is empty, as a leaf's must be.
fn leaf<F>(set: &SelectionSet, field: F) -> Option<F> {
    set.items.is_empty().then_some(field)
}

/// Writes the selected fields of `of` as a JSON object.
fn object<F: Field>(fields: &[Selected<F>], of: &F::Of, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.push(b'{');
    for (i, selected) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&selected.key);
        match &selected.field {
            Pick::Typename => json(F::TYPE_NAME, out)?,
            Pick::Field(field) => field.write(of, out)?,
        }
    }
    out.push(b'}');
    Ok(())
}

/// Writes a list of objects.
fn list<F: Field>(fields: &[Selected<F>], items: &[F::Of], out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        object(fields, item, out)?;
    }
    out.push(b']');
    Ok(())
}

/// Writes a scalar: a string (escaped), a number, or null.
fn json(value: &(impl Serialize + ?Sized), out: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(out, value)
}

/// Writes an ID: a UUID needs no escaping.
fn id(value: Uuid, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.push(b'"');
    out.extend_from_slice(value.hyphenated().encode_lower(&mut Uuid::encode_buffer()).as_bytes());
    out.push(b'"');
    Ok(())
}

#[derive(Debug)]
enum ResultField {
    Currency,
    Subtotal,
    DiscountTotal,
    ShippingAmount,
    ShippingDiscount,
    Total,
    Lines(Vec<Selected<LineField>>),
    Applied(Vec<Selected<AppliedField>>),
    Rejected(Vec<Selected<RejectedField>>),
}

impl Field for ResultField {
    type Of = PricedCart;
    const TYPE_NAME: &'static str = "PromotionResult";

    fn pick(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "currency" => leaf(set, Self::Currency),
            "subtotal" => leaf(set, Self::Subtotal),
            "discountTotal" => leaf(set, Self::DiscountTotal),
            "shippingAmount" => leaf(set, Self::ShippingAmount),
            "shippingDiscount" => leaf(set, Self::ShippingDiscount),
            "total" => leaf(set, Self::Total),
            "lines" => compile(set).map(Self::Lines),
            "applied" => compile(set).map(Self::Applied),
            "rejected" => compile(set).map(Self::Rejected),
            _ => None,
        }
    }

    fn write(&self, cart: &PricedCart, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::Currency => json(&cart.currency, out),
            Self::Subtotal => json(&cart.subtotal, out),
            Self::DiscountTotal => json(&cart.discount_total, out),
            Self::ShippingAmount => json(&cart.shipping_amount, out),
            Self::ShippingDiscount => json(&cart.shipping_discount, out),
            Self::Total => json(&cart.total, out),
            Self::Lines(fields) => list(fields, &cart.lines, out),
            Self::Applied(fields) => list(fields, &cart.applied, out),
            Self::Rejected(fields) => list(fields, &cart.rejected, out),
        }
    }
}

#[derive(Debug)]
enum LineField {
    LineId,
    Quantity,
    UnitPrice,
    Subtotal,
    Discount,
    Total,
    Adjustments(Vec<Selected<AdjustmentField>>),
}

impl Field for LineField {
    type Of = PricedLine;
    const TYPE_NAME: &'static str = "LineResult";

    fn pick(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "lineId" => leaf(set, Self::LineId),
            "quantity" => leaf(set, Self::Quantity),
            "unitPrice" => leaf(set, Self::UnitPrice),
            "subtotal" => leaf(set, Self::Subtotal),
            "discount" => leaf(set, Self::Discount),
            "total" => leaf(set, Self::Total),
            "adjustments" => compile(set).map(Self::Adjustments),
            _ => None,
        }
    }

    fn write(&self, line: &PricedLine, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::LineId => json(&line.line_id, out),
            Self::Quantity => json(&line.quantity, out),
            Self::UnitPrice => json(&line.unit_price, out),
            Self::Subtotal => json(&line.subtotal, out),
            Self::Discount => json(&line.discount, out),
            Self::Total => json(&line.total, out),
            Self::Adjustments(fields) => list(fields, &line.adjustments, out),
        }
    }
}

#[derive(Debug)]
enum AdjustmentField {
    PromotionId,
    CouponCode,
    Amount,
}

impl Field for AdjustmentField {
    type Of = Adjustment;
    const TYPE_NAME: &'static str = "LineAdjustment";

    fn pick(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "promotionId" => leaf(set, Self::PromotionId),
            "couponCode" => leaf(set, Self::CouponCode),
            "amount" => leaf(set, Self::Amount),
            _ => None,
        }
    }

    fn write(&self, adjustment: &Adjustment, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::PromotionId => id(adjustment.promotion_id, out),
            Self::CouponCode => json(&adjustment.coupon_code, out),
            Self::Amount => json(&adjustment.amount, out),
        }
    }
}

#[derive(Debug)]
enum AppliedField {
    PromotionId,
    CouponCode,
    Name,
    Amount,
}

impl Field for AppliedField {
    type Of = Applied;
    const TYPE_NAME: &'static str = "AppliedPromotion";

    fn pick(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "promotionId" => leaf(set, Self::PromotionId),
            "couponCode" => leaf(set, Self::CouponCode),
            "name" => leaf(set, Self::Name),
            "amount" => leaf(set, Self::Amount),
            _ => None,
        }
    }

    fn write(&self, applied: &Applied, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::PromotionId => id(applied.promotion_id, out),
            Self::CouponCode => json(&applied.coupon_code, out),
            Self::Name => json(&applied.name, out),
            Self::Amount => json(&applied.amount, out),
        }
    }
}

#[derive(Debug)]
enum RejectedField {
    PromotionId,
    CouponCode,
    Reason,
    Message,
}

impl Field for RejectedField {
    type Of = Rejected;
    const TYPE_NAME: &'static str = "RejectedPromotion";

    fn pick(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "promotionId" => leaf(set, Self::PromotionId),
            "couponCode" => leaf(set, Self::CouponCode),
            "reason" => leaf(set, Self::Reason),
            "message" => leaf(set, Self::Message),
            _ => None,
        }
    }

    fn write(&self, rejected: &Rejected, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::PromotionId => match rejected.promotion_id {
                Some(promotion_id) => id(promotion_id, out),
                None => json(&None::<()>, out),
            },
            Self::CouponCode => json(&rejected.coupon_code, out),
            // The enum's GraphQL name, as async-graphql writes it.
            Self::Reason => json(&RejectionReason::from(rejected.reason).to_value(), out),
            Self::Message => json(&rejected.message, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::PreviewPlan;

    fn compiles(document: &str) -> bool {
        PreviewPlan::compile(&parse_query(document).expect("parses")).is_some()
    }

    #[test]
    fn only_plain_preview_selections_are_compiled() {
        let preview =
            |selection: &str| format!("query($c: CartInput!) {{ previewPromotions(cart: $c) {{ {selection} }} }}");
        for served in [
            preview("total"),
            preview("__typename t: total lines { lineId adjustments { amount } } applied { name } rejected { reason }"),
            "query Named($cart: CartInput!) { p: previewPromotions(cart: $cart) { subtotal } }".to_owned(),
        ] {
            assert!(compiles(&served), "{served}");
        }
        for (why, left) in [
            ("a fragment", "query($c: CartInput!) { previewPromotions(cart: $c) { ...F } } fragment F on PromotionResult { total }".to_owned()),
            ("an inline fragment", preview("... on PromotionResult { total }")),
            ("a directive", preview("total @skip(if: false)")),
            ("a nullable cart", "query($c: CartInput) { previewPromotions(cart: $c) { total } }".to_owned()),
            ("a default cart", r#"query($c: CartInput! = {currency: "EUR", lines: []}) { previewPromotions(cart: $c) { total } }"#.to_owned()),
            ("a literal cart", r#"{ previewPromotions(cart: {currency: "EUR", lines: []}) { total } }"#.to_owned()),
            ("a second variable", "query($c: CartInput!, $d: Int) { previewPromotions(cart: $c) { total } }".to_owned()),
            ("two operations", format!("{} query B {{ __typename }}", preview("total").replacen("query(", "query A(", 1))),
            ("a second root field", "query($c: CartInput!) { __typename previewPromotions(cart: $c) { total } }".to_owned()),
            ("another root field", "query($c: CartInput!) { applyPromotions(cart: $c) { total } }".to_owned()),
            ("a mutation", "mutation($c: CartInput!) { previewPromotions(cart: $c) { total } }".to_owned()),
            ("a field read from the database", preview("applied { promotion { id } }")),
            ("the redemption", preview("redemption { orderId }")),
            ("a field twice", preview("total total")),
            ("a response key twice", preview("a: total a: subtotal")),
            ("a leaf with a selection", preview("total { x }")),
            ("an object without one", preview("lines")),
            ("an unknown field", preview("totals")),
            ("an argument", preview("lines(first: 1) { lineId }")),
        ] {
            assert!(!compiles(&left), "{why}: {left}");
        }
    }
}
