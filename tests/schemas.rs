//! The JSON Schemas in docs/schemas are what `keepwell schema` generates from the parsing
//! types, so they cannot drift from what keepwell accepts.

#[test]
fn checked_in_schemas_match_the_parsing_types() {
    for (name, schema) in keepwell::cli::schema::schemas().into_iter().chain(keepwell::cli::schema::payload_schemas()) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schemas/").to_string() + name;
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(checked_in == schema, "{name} is stale: run `cargo run -- schema` and commit docs/schemas");
        let parsed: serde_json::Value = serde_json::from_str(&schema).expect("valid JSON");
        assert_eq!(parsed["type"], "object", "{name}");
    }
}
