//! Client strings that PostgreSQL cannot store: its text type refuses the
//! NUL character (U+0000), and a statement binding one fails as a whole.
//!
//! Any string may reach SQL (ids, names, codes, order and customer ids,
//! segments, filters, cursors), so the arguments of the operation a request
//! runs are checked once, before execution: literal values, input objects
//! and lists at any depth, and the variables (or their defaults) they use.
//! The first string holding a NUL is refused as BAD_USER_INPUT naming its
//! input path, relative to its argument (`cart.lines[0].productId`), like
//! every other input error. Nothing else of a string is refused here.

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, Selection, SelectionSet};
use async_graphql::{Name, Pos, Positioned, Variables};
use async_graphql_value::{ConstValue, Value};

/// What a refused string is told.
pub const MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// The input path and position of the first string holding a NUL among the
/// arguments of `operation` (and of the fragments `document` defines).
pub fn find(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
) -> Option<(String, Pos)> {
    let finder = Finder { operation, variables };
    finder.set(&operation.selection_set.node).or_else(|| {
        document
            .fragments
            .values()
            .find_map(|fragment| finder.set(&fragment.node.selection_set.node))
    })
}

struct Finder<'a> {
    operation: &'a OperationDefinition,
    variables: &'a Variables,
}

impl Finder<'_> {
    /// Fragment spreads are not followed: every fragment is searched on its
    /// own. The parser bounds the nesting, so the recursion is bounded too.
    fn set(&self, set: &SelectionSet) -> Option<(String, Pos)> {
        set.items.iter().find_map(|selection| match &selection.node {
            Selection::Field(field) => field
                .node
                .arguments
                .iter()
                .find_map(|(name, value)| self.argument(name.node.to_string(), value))
                .or_else(|| self.set(&field.node.selection_set.node)),
            Selection::InlineFragment(fragment) => self.set(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => None,
        })
    }

    fn argument(&self, path: String, value: &Positioned<Value>) -> Option<(String, Pos)> {
        self.value(path, &value.node).map(|path| (path, value.pos))
    }

    fn value(&self, path: String, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => s.contains('\0').then_some(path),
            Value::Variable(name) => self.variable(name).and_then(|v| constant(path, v)),
            Value::List(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| self.value(format!("{path}[{i}]"), item)),
            Value::Object(fields) => fields
                .iter()
                .find_map(|(key, item)| self.value(format!("{path}.{key}"), item)),
            Value::Null | Value::Number(_) | Value::Boolean(_) | Value::Binary(_) | Value::Enum(_) => None,
        }
    }

    /// The variable's value as sent, else its default.
    fn variable(&self, name: &Name) -> Option<&ConstValue> {
        self.variables.get(name).or_else(|| {
            self.operation
                .variable_definitions
                .iter()
                .find(|d| d.node.name.node == *name)
                .and_then(|d| d.node.default_value.as_ref())
                .map(|v| &v.node)
        })
    }
}

fn constant(path: String, value: &ConstValue) -> Option<String> {
    match value {
        ConstValue::String(s) => s.contains('\0').then_some(path),
        ConstValue::List(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| constant(format!("{path}[{i}]"), item)),
        ConstValue::Object(fields) => fields
            .iter()
            .find_map(|(key, item)| constant(format!("{path}.{key}"), item)),
        ConstValue::Null
        | ConstValue::Number(_)
        | ConstValue::Boolean(_)
        | ConstValue::Binary(_)
        | ConstValue::Enum(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::Variables;

    use super::find;
    use crate::graphql::observe::chosen_operation;

    fn first(query: &str, variables: serde_json::Value) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let (operation, _) = chosen_operation(&document, None).expect("one operation");
        find(&document, operation, &Variables::from_json(variables)).map(|(path, _)| path)
    }

    #[test]
    fn a_nul_is_found_in_literals_variables_defaults_and_fragments_with_its_path() {
        assert_eq!(
            first(
                r#"{ redemption(orderId: "a\u0000b") { orderId } }"#,
                serde_json::json!({})
            ),
            Some("orderId".into())
        );
        assert_eq!(
            first(
                "query($c: CartInput!) { previewPromotions(cart: $c) { total } }",
                serde_json::json!({ "c": { "lines": [{ "id": "1" }, { "id": "x\u{0}" }] } })
            ),
            Some("cart.lines[1].id".into())
        );
        assert_eq!(
            first(
                r#"query($o: String = "\u0000") { a { b(orderId: $o) } }"#,
                serde_json::json!({})
            ),
            Some("orderId".into()),
            "a default is what runs when the variable is not sent"
        );
        assert_eq!(
            first(
                r#"{ ...F } fragment F on Query { promotions(filter: { nameContains: ["\u0000"] }) { totalCount } }"#,
                serde_json::json!({})
            ),
            Some("filter.nameContains[0]".into())
        );
    }

    #[test]
    fn any_other_character_passes() {
        assert_eq!(
            first(
                "query($c: String) { a(b: $c, d: \"é\u{1F600}\\u0001\") { e(f: [1, true, null, E]) } }",
                serde_json::json!({ "c": "\u{FFFF}\u{7F}", "unused": "\u{0}" })
            ),
            None,
            "an unused variable reaches nothing"
        );
    }
}
