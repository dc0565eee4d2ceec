//! JSON Schemas of job and rule files, generated from the types that parse them, for
//! editors' YAML extensions (`keepwell schema`, and the `schemas/` of `keepwell init`); and of
//! the webhook payload, from the types that write it, for receivers.

/// (file name, schema) for every kind of file keepwell reads.
pub fn schemas() -> Vec<(&'static str, String)> {
    let pretty = |s: schemars::Schema| serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
    vec![
        ("job.schema.json", pretty(schemars::schema_for!(crate::config::job::raw::RawJob))),
        ("rule-set.schema.json", pretty(schemars::schema_for!(crate::rules::raw::RawRuleSet))),
    ]
}

/// (file name, schema) for every payload keepwell sends: the webhook envelope.
pub fn payload_schemas() -> Vec<(&'static str, String)> {
    let mut schema = schemars::schema_for!(crate::outputs::posts::webhook::Envelope);
    schema.insert("title".into(), "keepwell webhook payload".into());
    vec![("webhook.schema.json", serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n")]
}
