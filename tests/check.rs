//! `keepwell check`: every diagnostic, asserted to the letter against `tests/check/*.txt`.
//!
//! Each case edits the standard test project with one mistake. To accept new output after a
//! deliberate change to a message, run with `KEEPWELL_BLESS=1` and review the diff.

mod common;

use common::Project;

/// (case, file to edit, text to find (`*`: the whole file), replacement)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("unknown_column", "rules/risk.yaml", "when: industry in", "when: industy in"),
    (
        "text_compared_with_number",
        "rules/risk.yaml",
        "when: industry in [\"travel\", \"retail\"]",
        "when: industry > 5",
    ),
    ("number_compared_with_text", "rules/health.yaml", "when: utilisation < 40", "when: utilisation < \"40\""),
    ("duplicate_rule_id", "rules/health.yaml", "id: risky_and_small", "id: low_utilisation"),
    ("unknown_depends_on", "rules/health.yaml", "depends_on: [risk]", "depends_on: [rsk]"),
    ("cycle", "rules/risk.yaml", "score:", "depends_on: [health]\nscore:"),
    (
        "grades_out_of_order",
        "rules/risk.yaml",
        "{ grade: high, min: 50 }",
        "{ grade: high, min: 50 }\n  - { grade: medium, min: 60 }",
    ),
    ("last_grade_has_min", "rules/risk.yaml", "{ grade: low }", "{ grade: low, min: 10 }"),
    ("grade_without_min_not_last", "rules/risk.yaml", "{ grade: high, min: 50 }", "{ grade: high }"),
    (
        "bad_cron",
        "jobs/nightly.yaml",
        "rule_sets:",
        "schedule:\n  cron: \"61 5 * * *\"\n  timezone: Europe/London\nrule_sets:",
    ),
    (
        "bad_time_zone",
        "jobs/nightly.yaml",
        "rule_sets:",
        "schedule:\n  cron: \"30 5 * * 1-5\"\n  timezone: Europe/Londn\nrule_sets:",
    ),
    ("reason_does_not_parse", "rules/risk.yaml", "\"{{ industry }} is hit hard\"", "\"{{ industry is hit hard\""),
    ("reason_unknown_column", "rules/risk.yaml", "\"{{ industry }} is hit hard\"", "\"{{ industri }} is hit hard\""),
    ("bad_address", "jobs/nightly.yaml", "lead@example.com", "lead at example"),
    ("unknown_field", "rules/risk.yaml", "    points: 60", "    pionts: 60"),
    ("feature_sql_error", "sql/account_features.sql", "active_users / seats", "active_user / seats"),
    ("entity_column_missing", "jobs/nightly.yaml", "arr: arr", "arr: annual_revenue"),
    ("unknown_rule_set", "jobs/nightly.yaml", "rule_sets: [risk, health]", "rule_sets: [risk, helth]"),
    ("bad_column_type", "jobs/nightly.yaml", "seats: INTEGER", "seats: INTEGR"),
    ("unknown_output_column", "jobs/nightly.yaml", "- Account: name", "- Account: nme"),
    (
        "report_unknown_grade",
        "jobs/nightly.yaml",
        "to: [\"lead@example.com\"]",
        "to: [\"lead@example.com\"]\n      report:\n        red: { rule_set: health, grade: redd }",
    ),
    (
        "report_unknown_rule_set",
        "jobs/nightly.yaml",
        "to: [\"lead@example.com\"]",
        "to: [\"lead@example.com\"]\n      report:\n        risk: rsk",
    ),
    (
        "report_renewal_not_a_date",
        "jobs/nightly.yaml",
        "to: [\"lead@example.com\"]",
        "to: [\"lead@example.com\"]\n      report:\n        renewal: name",
    ),
    (
        "unknown_lookup_table",
        "rules/risk.yaml",
        "when: industry in [\"travel\", \"retail\"]",
        "when: lookup(\"sectors\", industry, \"points\") > 0",
    ),
    (
        "unknown_lookup_column",
        "rules/risk.yaml",
        "when: industry in [\"travel\", \"retail\"]",
        "when: lookup(\"regions\", industry, \"point\") > 0",
    ),
    ("two_kinds_in_one_set", "rules/risk.yaml", "rules:", "measures:\n  - { id: m, weight: 1, score: \"50\" }\nrules:"),
    (
        "measure_without_scoring",
        "rules/health.yaml",
        "*",
        "grades: [{ grade: ok }]\nmeasures:\n  - id: usage\n    weight: 10\n    value: utilisation\n",
    ),
    (
        "bands_out_of_order",
        "rules/health.yaml",
        "*",
        "grades: [{ grade: ok }]\nmeasures:\n  - id: usage\n    weight: 10\n    value: utilisation\n    bands:\n      - { min: 50, score: 100 }\n      - { min: 80, score: 50 }\n      - { score: 0 }\n",
    ),
    ("script_unknown_column", "rules/health.yaml", "*", "grades: [{ grade: ok }]\nscript: health.rhai\n"),
    (
        "unknown_function",
        "rules/risk.yaml",
        "when: industry in [\"travel\", \"retail\"]",
        "when: add_month(as_of, 1) > as_of",
    ),
    ("wrong_argument_count", "rules/risk.yaml", "when: industry in [\"travel\", \"retail\"]", "when: days_since() > 3"),
    ("script_unknown_function", "rules/health.yaml", "*", "grades: [{ grade: ok }]\nscript: health.rhai\n"),
    ("single_equals", "rules/risk.yaml", "when: industry in [\"travel\", \"retail\"]", "when: industry = \"travel\""),
    (
        "and_or_words",
        "rules/risk.yaml",
        "when: industry in [\"travel\", \"retail\"]",
        "when: industry == \"travel\" and arr > 5",
    ),
    ("unquoted_yes", "rules/risk.yaml", "when: industry in [\"travel\", \"retail\"]", "when: yes"),
    ("missing_source_file", "jobs/nightly.yaml", "path: data/accounts.csv", "path: data/acounts.csv"),
    ("declared_column_not_in_file", "jobs/nightly.yaml", "seats: INTEGER", "seat: INTEGER"),
    ("misindented_job", "jobs/nightly.yaml", "    primary_key: account_id", "  primary_key: account_id"),
    ("tab_in_rules", "rules/risk.yaml", "    points: 60", "\tpoints: 60"),
    ("nothing_nested_under_a_key", "jobs/nightly.yaml", "    path: data/accounts.csv", "  path: data/accounts.csv"),
    (
        "key_outside_its_section",
        "jobs/nightly.yaml",
        "entity:\n  view: account_features",
        "entity:\nview: account_features",
    ),
    (
        "report_order_unknown_grade",
        "jobs/nightly.yaml",
        "to: [\"lead@example.com\"]",
        "to: [\"lead@example.com\"]\n      report:\n        red: { rule_set: health, grade: red, order: [green, yelow, red] }",
    ),
    ("broken_base_job", "jobs/nightly.yaml", "name: nightly\n", "name: nightly\nextends: jobs/base/accounts.yaml\n"),
    (
        "metric_unknown_column",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  red_arr:\n    value: sum(ar) FILTER (WHERE health.grade = 'red')\noutputs:",
    ),
    (
        "metric_unknown_result_field",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  red_share:\n    numerator: count(*) FILTER (WHERE health.grde = 'red')\n    denominator: count(*)\noutputs:",
    ),
    (
        "metric_unknown_column_in_a_block",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  red_share:\n    numerator: >-\n      count(*) FILTER (WHERE health.grade = 'red'\n        AND industy = 'travel')\n    denominator: count(*)\noutputs:",
    ),
    (
        "metric_not_an_aggregate",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  total_arr:\n    value: arr * 2\n    format: money\noutputs:",
    ),
    (
        "metric_where_not_a_condition",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  accounts:\n    value: count(*)\n    where: industry\noutputs:",
    ),
    (
        "metric_alert_unknown_name",
        "jobs/nightly.yaml",
        "outputs:",
        "owners: [\"ops@example.com\"]\nmetrics:\n  accounts:\n    value: count(*)\n    alert_when: chnage > 5\noutputs:",
    ),
    (
        "metric_without_value",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  churn_rate:\n    numerator: count(*) FILTER (WHERE health.grade = 'red')\n    format: percnt\noutputs:",
    ),
    (
        "metric_alert_without_owners",
        "jobs/nightly.yaml",
        "outputs:",
        "metrics:\n  accounts:\n    value: count(*)\n    alert_when: value < 2\noutputs:",
    ),
    (
        "report_unknown_metric",
        "jobs/nightly.yaml",
        "to: [\"lead@example.com\"]",
        "to: [\"lead@example.com\"]\n      report:\n        headline: [red_arr_shar]\nmetrics:\n  red_arr_share:\n    numerator: sum(arr) FILTER (WHERE health.grade = 'red')\n    denominator: sum(arr)",
    ),
    (
        "report_unknown_currency",
        "jobs/nightly.yaml",
        "to: [\"lead@example.com\"]",
        "to: [\"lead@example.com\"]\n      report:\n        currency: \"12\"",
    ),
    ("channel_settings", "jobs/nightly.yaml", "rule_sets:", "rule_sets:"),
    (
        "channel_unknown",
        "jobs/nightly.yaml",
        "- Why: risk.reasons + health.reasons",
        "- Why: risk.reasons + health.reasons\n      channels: [slakc]",
    ),
    (
        "tasks_misconfigured",
        "jobs/nightly.yaml",
        "  - summary:",
        "  - tasks:\n      name: followups\n      rule_sets: [risk, helth]\n      by: tags\n      cooldown: 36h\n      channels: [slack]\n  - summary:",
    ),
];

/// Files some cases need besides the edit.
const EXTRA_FILES: &[(&str, &str, &str)] = &[
    ("unknown_lookup_column", "rules/lookups/regions.csv", "industry,points\ntravel,10\n"),
    ("unknown_lookup_table", "rules/lookups/regions.csv", "industry,points\ntravel,10\n"),
    ("script_unknown_column", "rules/health.rhai", "let x = 1;\nif industy == \"travel\" { x = 2; }\n#{ score: x }\n"),
    (
        "broken_base_job",
        "jobs/base/accounts.yaml",
        "name: base\nsources:\n  accounts:\n    path: data/accounts.csv\n    primary_ky: account_id\n",
    ),
    ("script_unknown_function", "rules/health.rhai", "let x = 1;\nif is_mising(industry) { x = 2; }\n#{ score: x }\n"),
    (
        "channel_settings",
        "keepwell.yaml",
        "channels:\n  slack:\n    kind: slak\n    url_env: https://hooks.slack.com/services/T0/B0/X\n  crm:\n    kind: webhook\n    url_env: CRM_URL\n    routes: routes.csv\n    max_accounts: 60\n",
    ),
    ("channel_settings", "routes.csv", "owner,target\nann@example.com,U1\nANN@example.com,U2\nbob@example.com,\n"),
    ("channel_unknown", "keepwell.yaml", CHANNELS),
    ("tasks_misconfigured", "keepwell.yaml", CHANNELS),
];

const CHANNELS: &str = "channels:\n  slack:\n    kind: slack\n    url_env: SLACK_URL\n  crm:\n    kind: webhook\n    url_env: CRM_URL\n    secret_env: CRM_SECRET\n";

#[test]
fn a_correct_project_checks_clean() {
    let p = Project::new(&[]);
    let out = p.keepwell(&["check"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "checked 1 job and 2 rule sets: 0 errors, 0 warnings\n", "")
    );
}

#[test]
fn every_diagnostic_reads_exactly_as_expected() {
    let bless = std::env::var_os("KEEPWELL_BLESS").is_some();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check");
    let mut failures = Vec::new();
    for (case, file, find, replace) in CASES {
        let p = Project::new(&[]);
        let original = std::fs::read_to_string(p.path().join(file)).expect("read");
        if *find == "*" {
            p.write(file, replace);
        } else {
            assert!(original.contains(find), "case {case}: `{find}` is not in {file}");
            p.write(file, &original.replacen(find, replace, 1));
        }
        for (_, path, text) in EXTRA_FILES.iter().filter(|(c, _, _)| c == case) {
            p.write(path, text);
        }
        let out = p.keepwell(&["check"]);
        let actual = format!("exit {}\n{}", out.code, out.stderr);
        let snapshot = dir.join(format!("{case}.txt"));
        if bless {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(&snapshot, &actual).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if actual != expected {
            failures.push(format!("case {case}:\n--- expected\n{expected}--- actual\n{actual}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_cycle_stops_run_too_with_exit_code_2() {
    let p = Project::new(&[("rules/risk.yaml", &common::RISK.replace("score:", "depends_on: [health]\nscore:"))]);
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("error: rule sets depend on each other in a cycle: health -> risk -> health\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with("the job was not run: 1 error in its files (see `keepwell check`)\n"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join(".keepwell/keepwell.duckdb").exists());
}

#[test]
fn json_gives_each_diagnostic_with_its_code_and_place() {
    let p = Project::new(&[]);
    let original = std::fs::read_to_string(p.path().join("rules/risk.yaml")).expect("read");
    p.write("rules/risk.yaml", &original.replacen("when: industry in", "when: industy in", 1));
    let out = p.keepwell(&["check", "--format", "json"]);
    assert_eq!((out.code, out.stderr.as_str()), (2, ""));
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(
        doc,
        serde_json::json!({
            "jobs": 1,
            "rule_sets": 2,
            "errors": 1,
            "warnings": 0,
            "diagnostics": [{
                "code": "KW012",
                "severity": "error",
                "message": "unknown column `industy` in rule `hard_hit_industry` of rule set `risk`",
                "file": "rules/risk.yaml",
                "line": 7,
                "column": 11,
                "end": { "line": 7, "column": 18 },
                "hint": "did you mean `industry`?"
            }],
            "sources_outside_the_project": []
        })
    );
}

#[test]
fn json_and_snippets_give_the_same_codes_for_every_case() {
    for (case, file, find, replace) in CASES {
        let p = Project::new(&[]);
        let original = std::fs::read_to_string(p.path().join(file)).expect("read");
        let edited = if *find == "*" { replace.to_string() } else { original.replacen(find, replace, 1) };
        p.write(file, &edited);
        for (_, path, text) in EXTRA_FILES.iter().filter(|(c, _, _)| c == case) {
            p.write(path, text);
        }
        let human = p.keepwell(&["check"]);
        let json = p.keepwell(&["check", "--format", "json"]);
        assert_eq!(human.code, json.code, "case {case}");
        let shown: Vec<String> =
            human.stderr.lines().filter_map(|l| Some(l.split_once("= code: ")?.1.to_string())).collect();
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
        let given: Vec<String> = doc["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .map(|d| d["code"].as_str().expect("a code").to_string())
            .collect();
        assert!(!given.is_empty(), "case {case} reports nothing");
        assert_eq!(shown, given, "case {case}");
    }
}
