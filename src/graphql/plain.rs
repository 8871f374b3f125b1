//! [`Plain`]: an object whose fields are resolved one after the other.
//!
//! async-graphql resolves every object's fields concurrently: one boxed
//! future per field, polled through a `FuturesUnordered`. For the checkout's
//! results (a 20-line preview holds some 150 objects whose fields are plain
//! values) that machinery costs more than pricing the cart. `Plain<T>` is
//! the same GraphQL type as `T` (same name, same fields, same schema) but
//! awaits `T`'s fields in selection order, allocating only the result map.
//! Lists of `Plain` items are still resolved concurrently, so DataLoader
//! batching across items is unchanged.
//!
//! The semantics are async-graphql's own: `@skip`/`@include` are removed
//! before execution, fragments apply when their type condition is the
//! object or an interface it implements, a response key selected twice is
//! merged, and a field's error is recorded on the request and leaves the
//! field out.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::{
    ContainerType, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value,
};

/// `T`, resolved field after field.
pub struct Plain<T>(pub T);

impl<T: ContainerType> OutputType for Plain<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, _field: &Positioned<Field>) -> ServerResult<Value> {
        let mut fields = IndexMap::with_capacity(ctx.item.node.items.len());
        collect(ctx, &self.0, &mut fields).await?;
        Ok(if fields.is_empty() {
            Value::Null
        } else {
            Value::Object(fields)
        })
    }
}

/// Resolves the selection set of `ctx` on `root` into `fields`; a fragment
/// recurses (boxed; the parser bounds the nesting).
async fn collect<T: ContainerType>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
    fields: &mut IndexMap<Name, Value>,
) -> ServerResult<()> {
    for selection in &ctx.item.node.items {
        let (condition, set) = match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                if field.node.name.node == "__typename" {
                    merge(fields, key, Value::String(root.introspection_type_name().into_owned()));
                    continue;
                }
                match root.resolve_field(&ctx.with_field(field)).await {
                    Ok(value) => merge(fields, key, value.unwrap_or_default()),
                    Err(error) => ctx.add_error(error),
                }
                continue;
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let Some(fragment) = ctx.query_env.fragments.get(name) else {
                    return Err(ServerError::new(
                        format!(r#"Unknown fragment "{name}"."#),
                        Some(spread.pos),
                    ));
                };
                (Some(&fragment.node.type_condition), &fragment.node.selection_set)
            }
            Selection::InlineFragment(fragment) => {
                (fragment.node.type_condition.as_ref(), &fragment.node.selection_set)
            }
        };
        let own = root.introspection_type_name();
        let applies = condition.is_none_or(|c| {
            let on = c.node.on.node.as_str();
            on == own
                || ctx
                    .schema_env
                    .registry
                    .implements
                    .get(own.as_ref())
                    .is_some_and(|i| i.contains(on))
        });
        if applies {
            Box::pin(collect(&ctx.with_selection_set(set), root, fields)).await?;
        }
    }
    Ok(())
}

/// Adds `value` under `key`; a key already present (a field selected twice
/// with different sub-selections) gets the two merged, as async-graphql does.
fn merge(fields: &mut IndexMap<Name, Value>, key: Name, value: Value) {
    use async_graphql::indexmap::map::Entry;
    let present = match fields.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(value);
            return;
        }
        Entry::Occupied(slot) => slot.into_mut(),
    };
    match (present, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into, k, v);
            }
        }
        (Value::List(into), Value::List(from)) => {
            for (slot, item) in into.iter_mut().zip(from) {
                if let (Value::Object(into), Value::Object(from)) = (slot, item) {
                    for (k, v) in from {
                        merge(into, k, v);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

    use super::Plain;

    #[derive(SimpleObject, Clone)]
    struct Part {
        name: String,
        size: i32,
    }

    #[derive(Clone)]
    struct Item {
        id: i32,
        parts: Vec<Part>,
    }

    #[Object]
    impl Item {
        async fn id(&self) -> i32 {
            self.id
        }
        async fn parts(&self) -> Vec<Plain<Part>> {
            self.parts.iter().cloned().map(Plain).collect()
        }
        async fn main_part(&self) -> Option<Part> {
            self.parts.first().cloned()
        }
        async fn broken(&self) -> async_graphql::Result<i32> {
            Err("this field always fails".into())
        }
    }

    struct Query;

    #[Object]
    impl Query {
        /// async-graphql's own resolution.
        async fn items(&self) -> Vec<Item> {
            items()
        }
        /// The same items through `Plain`.
        async fn plain_items(&self) -> Vec<Plain<Item>> {
            items().into_iter().map(Plain).collect()
        }
    }

    fn items() -> Vec<Item> {
        let part = |name: &str, size| Part {
            name: name.into(),
            size,
        };
        vec![
            Item {
                id: 1,
                parts: vec![part("a", 1), part("b", 2)],
            },
            Item { id: 2, parts: vec![] },
        ]
    }

    /// The answer (keys in response order) and the errors of `selection`
    /// with FIELD replaced by `field`.
    async fn answer(selection: &str, field: &str) -> (String, Vec<String>) {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let response = schema.execute(selection.replace("FIELD", field)).await;
        let data = match response.data {
            async_graphql::Value::Object(mut fields) => fields.swap_remove(field).unwrap_or_default(),
            other => other,
        };
        let errors = response.errors.iter().map(|e| e.message.clone()).collect();
        (data.to_string(), errors)
    }

    #[tokio::test]
    async fn plain_objects_answer_exactly_as_async_graphql_does() {
        let selections = [
            "{ FIELD { id } }",
            "{ FIELD { __typename id parts { name size __typename } } }",
            "{ FIELD { first: id second: id parts { n: name } } }",
            "{ FIELD { parts { name } parts { size } mainPart { name } mainPart { size } } }",
            "{ FIELD { ... on Item { id } ... { parts { name } } } }",
            "{ FIELD { ...Both } } fragment Both on Item { id parts { ...Sized } } fragment Sized on Part { size }",
            "{ FIELD { id @skip(if: true) parts @include(if: true) { name } } }",
            "{ FIELD { id broken } }",
        ];
        for selection in selections {
            let standard = answer(selection, "items").await;
            assert_eq!(answer(selection, "plainItems").await, standard, "{selection}");
        }
    }
}
