//! The files `keepwell init` writes: the entity view over the extracts, a starter rule set
//! whose thresholds come from the data (with a test for each rule), the job, and the
//! settings and editor files around them.

use std::fmt::Write as _;

use chrono::NaiveDate;
use duckdb::Connection;

use super::init::{Extract, InitError, identifier, is_integer, is_number, is_time, quote};

pub const SETTINGS: &str = "\
# keepwell settings: every one is optional. With none, results are kept in
# .keepwell/keepwell.duckdb and mail is written as .eml files to .keepwell/outbox/.
#
# store: .keepwell/keepwell.duckdb
# mail:
#   from: \"keepwell <keepwell@yourcompany.com>\"
#   smtp:
#     host: smtp.yourcompany.com
#     tls: starttls
#     user: keepwell
#     password_env: KEEPWELL_SMTP_PASSWORD   # the password is read from this variable
# warehouse:
#   memory_limit: 1.1GB
";

/// VS Code's YAML extension: job and rule files checked against keepwell's schemas.
pub const VSCODE: &str = r#"{
  "yaml.schemas": {
    "schemas/job.schema.json": "jobs/*.yaml",
    "schemas/rule-set.schema.json": "rules/*.yaml"
  }
}
"#;

/// The entity view: its SQL, the columns it gives and the roles some of them play.
#[derive(Debug)]
pub struct EntityView {
    pub sql: String,
    pub key: String,
    /// How the key was chosen, said in the job.
    pub key_note: String,
    pub columns: Vec<(String, String)>,
    pub name: Option<String>,
    pub arr: Option<String>,
    pub owner: Option<String>,
}

/// The view with one row per account: the accounts' extract (columns renamed where a rule
/// could not read them), each other extract with the account's key counted per account.
pub fn entity_view(extracts: &[Extract], entity: usize) -> EntityView {
    let e = &extracts[entity];
    let renames: Vec<String> = e
        .columns
        .iter()
        .filter(|(n, _)| identifier(n) != *n)
        .map(|(n, _)| format!("{} AS {}", quote(n), identifier(n)))
        .collect();
    let star = if renames.is_empty() { "*".to_string() } else { format!("* RENAME ({})", renames.join(", ")) };
    let mut sql =
        String::from("-- The entity view: one row per account. Every column here is a name rules can read.\n");
    let (key, key_note, select) = match (&e.key, &e.account) {
        (Some(k), _) => (
            identifier(k),
            format!("guessed: `{k}` is the first id-like column with a distinct value on every row"),
            format!("SELECT a.{star}"),
        ),
        (None, Some(a)) => {
            let mut cols = vec![format!("a.{} AS {}", quote(a), identifier(a)), format!("count(*) AS {}_rows", e.name)];
            for (n, _) in e.columns.iter().filter(|(_, t)| is_time(t)) {
                cols.push(format!("max(a.{}) AS last_{}", quote(n), identifier(n)));
            }
            (
                identifier(a),
                format!("guessed: no column is distinct on every row, so the rows are counted per `{a}`"),
                format!("SELECT {}", cols.join(", ")),
            )
        }
        (None, None) => {
            let first = &e.columns[0].0;
            (
                identifier(first),
                format!("no column is distinct on every row: `{first}` is a guess, set the account's key here"),
                format!("SELECT a.{star}"),
            )
        }
    };
    // The key as the accounts' extract names it, for the joins.
    let key_in_file = e.key.clone().or(e.account.clone()).unwrap_or_else(|| e.columns[0].0.clone());
    let mut joins = String::new();
    let mut extra: Vec<String> = Vec::new();
    let mut unjoined = Vec::new();
    for (i, x) in extracts.iter().enumerate().filter(|(i, _)| *i != entity) {
        let Some((col, _)) = x.columns.iter().find(|(n, _)| identifier(n) == key) else {
            unjoined.push(x.name.clone());
            continue;
        };
        let mut cols = vec![format!("{} AS {key}", quote(col)), format!("count(*) AS {}_rows", x.name)];
        extra.push(format!("coalesce(j{i}.{0}_rows, 0) AS {0}_rows", x.name));
        for (n, _) in x.columns.iter().filter(|(_, t)| is_time(t)) {
            let alias = format!("{}_last_{}", x.name, identifier(n));
            cols.push(format!("max({}) AS {alias}", quote(n)));
            extra.push(format!("j{i}.{alias}"));
        }
        let _ = writeln!(
            joins,
            "LEFT JOIN (SELECT {} FROM {} GROUP BY 1) AS j{i} ON j{i}.{key} = a.{}",
            cols.join(", "),
            quote(&x.name),
            quote(&key_in_file)
        );
    }
    sql.push_str(&select);
    for x in &extra {
        let _ = write!(sql, ",\n       {x}");
    }
    let _ = write!(sql, "\nFROM {} AS a\n{joins}", quote(&e.name));
    if e.key.is_none() && e.account.is_some() {
        sql.push_str("GROUP BY ALL\n");
    }
    if !unjoined.is_empty() {
        let _ = writeln!(
            sql,
            "-- Not joined (no `{key}` column): {}. Join them here as the others are.",
            unjoined.join(", ")
        );
    }
    EntityView { sql, key, key_note, columns: Vec::new(), name: None, arr: None, owner: None }
}

/// The view's columns, as DuckDB builds it over the extracts, and their roles.
pub fn describe(conn: &Connection, extracts: &[Extract], view: &mut EntityView) -> Result<(), InitError> {
    for x in extracts {
        conn.execute_batch(&format!(
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM {}",
            quote(&x.name),
            super::init::reader_of(&x.source_file)
        ))?;
    }
    conn.execute_batch(&format!("CREATE OR REPLACE VIEW account_features AS\n{}", view.sql))?;
    let mut stmt = conn.prepare("DESCRIBE SELECT * FROM account_features")?;
    view.columns = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let find = |score: &dyn Fn(&str, &str) -> Option<u8>| {
        let mut best: Option<(u8, String)> = None;
        for (n, t) in &view.columns {
            if *n == view.key {
                continue;
            }
            if let Some(s) = score(&n.to_ascii_lowercase(), t)
                && best.as_ref().is_none_or(|(b, _)| s < *b)
            {
                best = Some((s, n.clone()));
            }
        }
        best.map(|(_, n)| n)
    };
    view.name = find(&|n, t| match (n, t == "VARCHAR") {
        ("name" | "account_name" | "company" | "company_name" | "customer_name", true) => Some(0),
        (n, true) if n.ends_with("_name") || n.ends_with("name") => Some(1),
        _ => None,
    });
    view.arr = find(&|n, t| match (n, is_number(t)) {
        ("arr", true) => Some(0),
        (n, true) if n.contains("arr") || n.contains("mrr") || n.contains("revenue") || n.contains("acv") => Some(1),
        (n, true) if n.contains("charges") || n.contains("contract_value") || n.contains("amount") => Some(2),
        _ => None,
    });
    view.owner = find(&|n, t| match (n, t == "VARCHAR") {
        (n, true) if n.contains("email") && (n.contains("csm") || n.contains("owner")) => Some(0),
        (n, true) if n.contains("email") => Some(1),
        _ => None,
    });
    Ok(())
}

/// A rule of the starter set, and the values that make it fire and not.
#[derive(Debug)]
struct StarterRule {
    id: String,
    when: String,
    reason: String,
    column: String,
    firing: String,
    calm: String,
}

/// The starter rule set and what it reads.
#[derive(Debug)]
pub struct Starter {
    pub text: String,
}

/// Up to three rules over what the view holds, thresholds from the data, and a test each.
pub fn starter(conn: &Connection, view: &EntityView, today: NaiveDate) -> Result<Starter, InitError> {
    let mut rules: Vec<StarterRule> = Vec::new();
    let time = |t: &str, d: NaiveDate| {
        let day = d.format("%Y-%m-%d");
        if t == "DATE" { format!("\"{day}\"") } else { format!("\"{day} 00:00:00\"") }
    };
    let usable = |n: &str| *n != *view.key && Some(n) != view.owner.as_deref();
    let times: Vec<&(String, String)> = view.columns.iter().filter(|(n, t)| is_time(t) && usable(n)).collect();
    let activity = ["last", "login", "event", "seen", "active", "activity"]
        .iter()
        .find_map(|w| times.iter().find(|(n, _)| n.to_ascii_lowercase().contains(w)));
    let renewal = times.iter().find(|(n, _)| n.to_ascii_lowercase().contains("renew"));
    if let Some((c, t)) = activity.or(times.first()).filter(|_| renewal.is_none() || activity.is_some()) {
        rules.push(StarterRule {
            id: "inactive".into(),
            when: format!("days_since({c}) > 30"),
            reason: format!("nothing since {{{{ {c} }}}}"),
            column: c.clone(),
            firing: time(t, today - chrono::Duration::days(60)),
            calm: time(t, today),
        });
    }
    if let Some((c, t)) = renewal {
        rules.push(StarterRule {
            id: "renewal_soon".into(),
            when: format!("days_until({c}) >= 0 && days_until({c}) <= 90"),
            reason: format!("renews on {{{{ {c} }}}}"),
            column: c.clone(),
            firing: time(t, today + chrono::Duration::days(30)),
            calm: time(t, today + chrono::Duration::days(365)),
        });
    }
    let numbers: Vec<&(String, String)> = view
        .columns
        .iter()
        .filter(|(n, t)| is_number(t) && usable(n) && Some(n.as_str()) != view.arr.as_deref())
        .collect();
    let usage = ["active", "usage", "login", "event", "rows", "tenure", "users", "seats"]
        .iter()
        .find_map(|w| numbers.iter().find(|(n, _)| n.to_ascii_lowercase().contains(w)));
    if let Some((c, t)) = usage.or(numbers.first()) {
        let (q, min): (Option<f64>, Option<f64>) = conn.query_row(
            &format!(
                "SELECT CAST(quantile_cont({0}, 0.25) AS DOUBLE), CAST(min({0}) AS DOUBLE) FROM account_features",
                quote(c)
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let (Some(q), Some(min)) = (q, min) {
            let q = if is_integer(t) { q.floor() } else { (q * 100.0).round() / 100.0 };
            let text = |v: f64| if is_integer(t) { format!("{}", v as i64) } else { format!("{v:?}") };
            // When a quarter of the accounts share the lowest value (no events at all, say),
            // the rule finds those: `<=` it.
            let (op, firing, calm) = if q <= min { ("<=", q, q + 1.0) } else { ("<", q - 1.0, q) };
            let threshold = text(q);
            rules.push(StarterRule {
                id: format!("low_{c}"),
                when: format!("{c} {op} {threshold}"),
                reason: format!("{c} is {{{{ {c} }}}}, among the lowest quarter of accounts ({op} {threshold})"),
                column: c.clone(),
                calm: text(calm),
                firing: text(firing),
            });
        }
    }
    if let Some(owner) = &view.owner {
        rules.push(StarterRule {
            id: "no_owner".into(),
            when: format!("is_missing({owner})"),
            reason: "no owner on record".into(),
            column: owner.clone(),
            firing: "null".into(),
            calm: "\"csm@example.com\"".into(),
        });
    }
    if rules.is_empty() {
        let (c, _) = view.columns.iter().find(|(n, _)| usable(n)).unwrap_or(&view.columns[0]);
        rules.push(StarterRule {
            id: format!("missing_{c}"),
            when: format!("is_missing({c})"),
            reason: format!("no {c} on record"),
            column: c.clone(),
            firing: "null".into(),
            calm: "\"x\"".into(),
        });
    }
    Ok(Starter { text: starter_text(&rules, today) })
}

fn starter_text(rules: &[StarterRule], today: NaiveDate) -> String {
    let mut t = String::from(
        "# yaml-language-server: $schema=../schemas/rule-set.schema.json\n\
         # A first rule set, written by `keepwell init` from the data: change the thresholds,\n\
         # add rules, and keep a test for each (`keepwell test --strict`). docs/rules.md has the language.\n\
         description: Accounts that need a look, from a few signals in the extract.\n\
         grades:\n  - { grade: attention, min: 1 }\n  - { grade: ok }\nrules:\n",
    );
    for r in rules {
        let _ = write!(t, "  - id: {}\n    when: {}\n    points: 1\n    reason: \"{}\"\n", r.id, r.when, r.reason);
    }
    let as_of = today.format("%Y-%m-%d");
    let calm: Vec<String> = rules.iter().map(|r| format!("{}: {}", r.column, r.calm)).collect();
    let _ = write!(
        t,
        "tests:\n  - name: an account with nothing wrong needs no attention\n    as_of: {as_of}\n    row: {{ {} }}\n    \
         expect: {{ grade: ok, fired: [] }}\n",
        calm.join(", ")
    );
    for r in rules {
        let row: Vec<String> =
            rules.iter().map(|o| format!("{}: {}", o.column, if o.id == r.id { &o.firing } else { &o.calm })).collect();
        let _ = write!(
            t,
            "  - name: {} fires\n    as_of: {as_of}\n    row: {{ {} }}\n    expect: {{ grade: attention, fired: [{}] }}\n",
            r.id,
            row.join(", "),
            r.id
        );
    }
    t
}

/// The job: the sources with their inferred columns in a comment, the entity, the starter
/// rules, an escalation list to each owner and a summary.
pub fn job(name: &str, extracts: &[Extract], view: &EntityView, today: NaiveDate) -> String {
    let mut t = String::from("# yaml-language-server: $schema=../schemas/job.schema.json\n");
    let from: Vec<&str> = extracts.iter().map(|e| e.path.as_str()).collect();
    let _ = writeln!(
        t,
        "# Written by `keepwell init` on {} from {}. `keepwell check` says what is wrong.",
        today.format("%Y-%m-%d"),
        from.join(", ")
    );
    let _ = write!(
        t,
        "name: {name}\ndescription: Every account scored by the starter rules; each owner is mailed the accounts \
         that need attention.\nschedule:\n  cron: \"0 6 * * 1-5\"   # 06:00 on weekdays, for `keepwell serve`\n  \
         timezone: UTC\n\nsources:\n"
    );
    for e in extracts {
        let _ = writeln!(
            t,
            "  {}:\n    path: {}   # {} rows, {} columns",
            e.name,
            scalar(&e.path),
            e.rows,
            e.columns.len()
        );
        match (&e.key, &e.account) {
            (Some(k), _) => {
                let _ = writeln!(t, "    primary_key: {}   # guessed: distinct on every row", scalar(k));
            }
            (None, Some(a)) => {
                let _ = writeln!(t, "    # no primary key: several rows per `{a}`");
            }
            _ => {}
        }
        t.push_str("    # Every column is loaded, typed as DuckDB reads the file:\n");
        let mut line = String::from("    #  ");
        for (i, (n, ty)) in e.columns.iter().enumerate() {
            let item = format!(" {n} {ty}{}", if i + 1 < e.columns.len() { "," } else { "" });
            if line.len() + item.len() > 96 {
                let _ = writeln!(t, "{line}");
                line = String::from("    #  ");
            }
            line.push_str(&item);
        }
        let _ = writeln!(t, "{line}");
        t.push_str("    # Declare a column's type to fix it: `columns: { arr: DECIMAL(18,2) }`.\n");
    }
    let _ = write!(
        t,
        "\nfeatures:\n  - jobs/features/account_features.sql\n\nentity:\n  view: account_features\n  key: {}   # {}\n",
        view.key, view.key_note
    );
    for (role, col) in [("name", &view.name), ("arr", &view.arr), ("owner", &view.owner)] {
        if let Some(c) = col {
            let _ = writeln!(t, "  {role}: {c}");
        }
    }
    let account = view.name.clone().unwrap_or_else(|| view.key.clone());
    // An account without an owner goes to the team's address rather than nowhere.
    let owner = match &view.owner {
        Some(o) => format!("'coalesce({o}, \"cs-team@example.com\")'"),
        None => "'\"cs-team@example.com\"'".into(),
    };
    t.push_str(
        "\nrule_sets: [starter]\n\n# Population numbers, SQL over every account and its results (`starter.grade`), kept\n\
         # every run in the store's `metrics` table and charted in the summary (docs/metrics.md).\n\
         metrics:\n  attention_share:\n    title: Accounts that need attention\n    \
         numerator: count(*) FILTER (WHERE starter.grade = 'attention')\n    denominator: count(*)\n    of: all accounts\n",
    );
    if let Some(arr) = &view.arr {
        let arr = crate::warehouse::ident(arr);
        let _ = write!(
            t,
            "  attention_arr:\n    title: ARR that needs attention\n    \
             value: sum({arr}) FILTER (WHERE starter.grade = 'attention')\n    format: money\n"
        );
    }
    let _ = write!(
        t,
        "\noutputs:\n  - escalation:\n      name: attention\n      title: accounts that need attention\n      \
         when: starter.grade == \"attention\"\n      owner: {owner}\n      remind_after: 7d\n      columns:\n        \
         - Account: {account}\n"
    );
    if let Some(arr) = &view.arr {
        let _ = writeln!(t, "        - ARR: money({arr})");
    }
    t.push_str(
        "        - Why: starter.reasons\n  - summary:\n      name: summary\n      title: account health\n      \
         to: [\"CS Leadership <cs-leadership@example.com>\"]\n",
    );
    t
}

/// A YAML scalar for any text: plain when it reads back the same, else double-quoted.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./- ".contains(c))
        && !s.starts_with([' ', '-'])
        && !s.ends_with(' ');
    if plain { s.to_string() } else { serde_json::to_string(s).unwrap_or_default() }
}
