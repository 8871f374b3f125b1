//! schema.graphql is the output of `print-schema`: this fails when they drift.

#[test]
fn schema_graphql_is_the_printed_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let stored = std::fs::read_to_string(path).expect("schema.graphql at the top of the repo");
    let printed = promotions::graphql::sdl();
    assert!(
        stored == printed,
        "schema.graphql is stale: run `cargo run -- print-schema > schema.graphql`"
    );
}
