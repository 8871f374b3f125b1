//! previewPromotions without async-graphql's executor.
//!
//! A checkout sends the same preview document many times a second while a
//! cart changes. async-graphql validates that document every time, coerces
//! the cart through a value tree, builds a value tree of the answer and then
//! serialises it: four fifths of a small preview's CPU. So a preview document
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

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{InputType, PathSegment, Pos, Response, ServerError};
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::types::checkout::{CartInput, RejectionReason};
use crate::domain::engine::{Adjustment, Applied, PricedCart, PricedLine, Rejected};
use crate::error::AppError;

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
        let (operation, name) = match &document.operations {
            DocumentOperations::Single(operation) => (operation, None),
            DocumentOperations::Multiple(operations) if operations.len() == 1 => {
                let (name, operation) = operations.iter().next()?;
                (operation, Some(name.to_string()))
            }
            DocumentOperations::Multiple(_) => return None,
        };
        let operation = &operation.node;
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
    /// are exactly the cart, read strictly.
    pub fn cart(&self, operation_name: Option<&str>, variables: Option<&RawValue>) -> Option<CartInput> {
        if operation_name.is_some_and(|name| Some(name) != self.operation.as_deref()) {
            return None;
        }
        let mut variables = serde_json::Deserializer::from_str(variables?.get());
        let cart = OnlyCart(&self.variable).deserialize(&mut variables).ok()?;
        variables.end().ok()?;
        Some(cart)
    }

    /// The response body of a priced cart: `{"data":{<key>:{...}}}`.
    pub fn answer(&self, priced: &PricedCart) -> serde_json::Result<Vec<u8>> {
        let mut body = Vec::with_capacity(ANSWER_CAPACITY);
        body.extend_from_slice(b"{\"data\":{");
        serde_json::to_writer(&mut body, &self.key)?;
        body.push(b':');
        serde_json::to_writer(&mut body, &Object(&self.result, priced))?;
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

/// One selected field and its response key.
#[derive(Debug)]
struct Selected<F> {
    key: String,
    field: F,
}

/// A field of one result type, and how to write it.
trait Field: Sized {
    /// The value the field is read from.
    type Of;
    const TYPE_NAME: &'static str;
    /// The field named `name` selecting `set` (empty for a leaf).
    fn pick(name: &str, set: &SelectionSet) -> Option<Self>;
    fn write<M: SerializeMap>(&self, key: &str, of: &Self::Of, map: &mut M) -> Result<(), M::Error>;
}

/// A selection set of plain fields, or None.
fn compile<F: Field>(set: &SelectionSet) -> Option<Vec<Selected<F>>> {
    let mut selected: Vec<Selected<F>> = Vec::with_capacity(set.items.len());
    let mut names = Vec::with_capacity(set.items.len());
    for item in &set.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        let (name, key) = (field.name.node.as_str(), field.response_key().node.as_str());
        if !field.arguments.is_empty()
            || !field.directives.is_empty()
            || names.contains(&name)
            || selected.iter().any(|s| s.key == key)
        {
            return None;
        }
        names.push(name);
        selected.push(Selected {
            key: key.to_owned(),
            field: F::pick(name, &field.selection_set.node)?,
        });
    }
    (!selected.is_empty()).then_some(selected)
}

/// `field` when `set` is empty, as a leaf's must be.
fn leaf<F>(set: &SelectionSet, field: F) -> Option<F> {
    set.items.is_empty().then_some(field)
}

/// An object: the selected fields of `1`.
struct Object<'a, F: Field>(&'a [Selected<F>], &'a F::Of);

impl<F: Field> Serialize for Object<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for selected in self.0 {
            selected.field.write(&selected.key, self.1, &mut map)?;
        }
        map.end()
    }
}

/// A list of objects.
struct List<'a, F: Field>(&'a [Selected<F>], &'a [F::Of]);

impl<F: Field> Serialize for List<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.1.iter().map(|item| Object(self.0, item)))
    }
}

#[derive(Debug)]
enum ResultField {
    Typename,
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
            "__typename" => leaf(set, Self::Typename),
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

    fn write<M: SerializeMap>(&self, key: &str, cart: &PricedCart, map: &mut M) -> Result<(), M::Error> {
        match self {
            Self::Typename => map.serialize_entry(key, Self::TYPE_NAME),
            Self::Currency => map.serialize_entry(key, &cart.currency),
            Self::Subtotal => map.serialize_entry(key, &cart.subtotal),
            Self::DiscountTotal => map.serialize_entry(key, &cart.discount_total),
            Self::ShippingAmount => map.serialize_entry(key, &cart.shipping_amount),
            Self::ShippingDiscount => map.serialize_entry(key, &cart.shipping_discount),
            Self::Total => map.serialize_entry(key, &cart.total),
            Self::Lines(fields) => map.serialize_entry(key, &List(fields, &cart.lines)),
            Self::Applied(fields) => map.serialize_entry(key, &List(fields, &cart.applied)),
            Self::Rejected(fields) => map.serialize_entry(key, &List(fields, &cart.rejected)),
        }
    }
}

#[derive(Debug)]
enum LineField {
    Typename,
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
            "__typename" => leaf(set, Self::Typename),
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

    fn write<M: SerializeMap>(&self, key: &str, line: &PricedLine, map: &mut M) -> Result<(), M::Error> {
        match self {
            Self::Typename => map.serialize_entry(key, Self::TYPE_NAME),
            Self::LineId => map.serialize_entry(key, &line.line_id),
            Self::Quantity => map.serialize_entry(key, &line.quantity),
            Self::UnitPrice => map.serialize_entry(key, &line.unit_price),
            Self::Subtotal => map.serialize_entry(key, &line.subtotal),
            Self::Discount => map.serialize_entry(key, &line.discount),
            Self::Total => map.serialize_entry(key, &line.total),
            Self::Adjustments(fields) => map.serialize_entry(key, &List(fields, &line.adjustments)),
        }
    }
}

#[derive(Debug)]
enum AdjustmentField {
    Typename,
    PromotionId,
    CouponCode,
    Amount,
}

impl Field for AdjustmentField {
    type Of = Adjustment;
    const TYPE_NAME: &'static str = "LineAdjustment";

    fn pick(name: &str, set: &SelectionSet) -> Option<Self> {
        match name {
            "__typename" => leaf(set, Self::Typename),
            "promotionId" => leaf(set, Self::PromotionId),
            "couponCode" => leaf(set, Self::CouponCode),
            "amount" => leaf(set, Self::Amount),
            _ => None,
        }
    }

    fn write<M: SerializeMap>(&self, key: &str, adjustment: &Adjustment, map: &mut M) -> Result<(), M::Error> {
        match self {
            Self::Typename => map.serialize_entry(key, Self::TYPE_NAME),
            Self::PromotionId => map.serialize_entry(key, &adjustment.promotion_id),
            Self::CouponCode => map.serialize_entry(key, &adjustment.coupon_code),
            Self::Amount => map.serialize_entry(key, &adjustment.amount),
        }
    }
}

#[derive(Debug)]
enum AppliedField {
    Typename,
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
            "__typename" => leaf(set, Self::Typename),
            "promotionId" => leaf(set, Self::PromotionId),
            "couponCode" => leaf(set, Self::CouponCode),
            "name" => leaf(set, Self::Name),
            "amount" => leaf(set, Self::Amount),
            _ => None,
        }
    }

    fn write<M: SerializeMap>(&self, key: &str, applied: &Applied, map: &mut M) -> Result<(), M::Error> {
        match self {
            Self::Typename => map.serialize_entry(key, Self::TYPE_NAME),
            Self::PromotionId => map.serialize_entry(key, &applied.promotion_id),
            Self::CouponCode => map.serialize_entry(key, &applied.coupon_code),
            Self::Name => map.serialize_entry(key, &applied.name),
            Self::Amount => map.serialize_entry(key, &applied.amount),
        }
    }
}

#[derive(Debug)]
enum RejectedField {
    Typename,
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
            "__typename" => leaf(set, Self::Typename),
            "promotionId" => leaf(set, Self::PromotionId),
            "couponCode" => leaf(set, Self::CouponCode),
            "reason" => leaf(set, Self::Reason),
            "message" => leaf(set, Self::Message),
            _ => None,
        }
    }

    fn write<M: SerializeMap>(&self, key: &str, rejected: &Rejected, map: &mut M) -> Result<(), M::Error> {
        match self {
            Self::Typename => map.serialize_entry(key, Self::TYPE_NAME),
            Self::PromotionId => map.serialize_entry(key, &rejected.promotion_id),
            Self::CouponCode => map.serialize_entry(key, &rejected.coupon_code),
            // The enum's GraphQL name, as async-graphql writes it.
            Self::Reason => map.serialize_entry(key, &RejectionReason::from(rejected.reason).to_value()),
            Self::Message => map.serialize_entry(key, &rejected.message),
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
