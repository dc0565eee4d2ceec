//! Reasons written without the template engine when their template is plain: text,
//! `{{ name }}` (or `{{ name.field }}`), `{{ name | money }}`, `{{ name | join(", ") }}` and one level of
//! `{% if name %}..{% else %}..{% endif %}` around those, nothing else. A run writes millions
//! of reasons, and most templates are of that form; each gives exactly the text minijinja
//! would (a test holds both to it), and any value this path does not know how to write (a
//! missing value, true/false, a list of numbers) sends the reason back to minijinja.

use std::borrow::Cow;

use rhai::{Dynamic, Scope};

use crate::entity::display_value;
use minijinja::Environment;

/// Why a reason could not be written; recorded against the account's rule.
#[derive(Debug, thiserror::Error)]
pub enum ReasonError {
    #[error("{0}")]
    NoTemplate(minijinja::Error),
    #[error("the reason could not be written: {0}")]
    Render(minijinja::Error),
}

/// The template environment reasons and mail share: a fuel limit, so no template can run
/// for ever, the `money` filter, and whole numbers written as such.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(1_000_000));
    env.add_filter("money", money);
    // Whole numbers read as such in reasons and mail (`120000`, not `120000.0`).
    env.set_formatter(|out, state, value| {
        if value.kind() == minijinja::value::ValueKind::Number
            && !value.is_integer()
            && let Ok(f) = f64::try_from(value.clone())
            && f.fract() == 0.0
            && f.abs() < 1e15
        {
            return out.write_str(&(f as i64).to_string()).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// `{{ arr | money }}`: `$1,234,567` style, whole units; `{{ arr | money("€") }}` in
/// another currency.
fn money(v: minijinja::Value, currency: Option<String>) -> String {
    super::engine::money_in(f64::try_from(v).unwrap_or(0.0), currency.as_deref().unwrap_or("$"))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Value(String),
    Money(String),
    /// `{{ -name }}`: a number negated.
    Neg(String),
    /// A list joined with the separator.
    Join(String, String),
    /// `{% if name %}`: the first parts when the value is true as minijinja tests it.
    If(String, Vec<Part>, Vec<Part>),
}

/// The parts of a plain template, or `None` when it uses anything more.
pub fn parse(source: &str) -> Option<Vec<Part>> {
    // A trailing newline is dropped by minijinja; comments and whitespace control are not
    // plain.
    if source.contains('\n') || source.contains("{#") {
        return None;
    }
    match sequence(source, 0)? {
        (parts, "", None) => Some(parts),
        _ => None,
    }
}

/// Parts up to the end of `rest` or up to an `{% else %}` or `{% endif %}` tag, which is
/// returned with what follows it. `depth` is 1 inside an `if`, where no other may open.
fn sequence(mut rest: &str, depth: usize) -> Option<(Vec<Part>, &str, Option<&'static str>)> {
    let mut parts = Vec::new();
    loop {
        let start = match (rest.find("{{"), rest.find("{%")) {
            (None, None) => {
                push_text(&mut parts, rest)?;
                return Some((parts, "", None));
            }
            (a, b) => a.unwrap_or(usize::MAX).min(b.unwrap_or(usize::MAX)),
        };
        push_text(&mut parts, &rest[..start])?;
        let (open, close) = if rest[start..].starts_with("{{") { ("{{", "}}") } else { ("{%", "%}") };
        let end = rest[start..].find(close)? + start;
        let inner = &rest[start + 2..end];
        if inner.starts_with(['-', '+']) || inner.ends_with(['-', '+']) {
            return None;
        }
        rest = &rest[end + 2..];
        if open == "{{" {
            parts.push(expression(inner)?);
            continue;
        }
        match inner.split_whitespace().collect::<Vec<_>>()[..] {
            ["if", test] if depth == 0 => {
                let test = name(test)?;
                let (then, after, tag) = sequence(rest, 1)?;
                let (otherwise, after) = match tag? {
                    "endif" => (Vec::new(), after),
                    _ => match sequence(after, 1)? {
                        (otherwise, after, Some("endif")) => (otherwise, after),
                        _ => return None,
                    },
                };
                parts.push(Part::If(test, then, otherwise));
                rest = after;
            }
            ["else"] if depth == 1 => return Some((parts, rest, Some("else"))),
            ["endif"] if depth == 1 => return Some((parts, rest, Some("endif"))),
            _ => return None,
        }
    }
}

/// What goes between `{{` and `}}`.
fn expression(inner: &str) -> Option<Part> {
    if let Some(negated) = inner.trim().strip_prefix('-') {
        return Some(Part::Neg(name(negated)?));
    }
    Some(match inner.split_once('|') {
        None => Part::Value(name(inner)?),
        Some((value, filter)) if filter.trim() == "money" => Part::Money(name(value)?),
        Some((value, filter)) => {
            let args = filter.trim().strip_prefix("join(")?.strip_suffix(')')?.trim();
            let quote = args.chars().next().filter(|q| matches!(q, '\'' | '"'))?;
            let separator = args.strip_prefix(quote)?.strip_suffix(quote)?;
            if separator.contains(['\'', '"', '\\', '{', '}']) {
                return None;
            }
            Part::Join(name(value)?, separator.to_string())
        }
    })
}

fn push_text(parts: &mut Vec<Part>, text: &str) -> Option<()> {
    if text.contains(['{', '}']) {
        return None;
    }
    if !text.is_empty() {
        parts.push(Part::Text(text.to_string()));
    }
    Some(())
}

/// A variable name, or one field of a variable (`health.grade`).
fn name(s: &str) -> Option<String> {
    match s.trim().split_once('.') {
        Some((map, field)) => Some(format!("{}.{}", bare(map)?, bare(field)?)),
        None => bare(s),
    }
}

/// A bare variable name.
fn bare(s: &str) -> Option<String> {
    let s = s.trim();
    let mut chars = s.chars();
    let first = chars.next()?;
    let plain = (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    // Names minijinja reads as constants, or as words of its own, rather than variables.
    let constant = matches!(s, "true" | "false" | "none" | "True" | "False" | "None" | "not" | "loop");
    (plain && !constant).then(|| s.to_string())
}

/// The reason, with `points` as the value of `points`; `None` when a value needs minijinja.
pub fn render(parts: &[Part], scope: &Scope, points: f64) -> Option<String> {
    let mut out = String::new();
    write_parts(&mut out, parts, scope, points)?;
    Some(out)
}

fn write_parts(out: &mut String, parts: &[Part], scope: &Scope, points: f64) -> Option<()> {
    let points_value = Dynamic::from_float(points);
    let value = |n: &str| -> Option<Cow<Dynamic>> {
        match n.split_once('.') {
            // A field the map does not have is left to minijinja.
            Some((map, field)) => Some(Cow::Owned(scope.get(map)?.read_lock::<rhai::Map>()?.get(field)?.clone())),
            None if n == "points" => Some(Cow::Borrowed(&points_value)),
            None => scope.get(n).map(Cow::Borrowed),
        }
    };
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Value(n) => write_value(out, &*value(n)?)?,
            Part::Neg(n) => {
                let v = value(n)?;
                if let Ok(i) = v.as_int() {
                    out.push_str(&i.checked_neg()?.to_string());
                } else {
                    write_value(out, &Dynamic::from_float(-v.as_float().ok()?))?;
                }
            }
            Part::Money(n) => out.push_str(&super::engine::money(super::engine::number(&*value(n)?)?)),
            Part::Join(n, separator) => {
                let list = value(n)?;
                let items = list.read_lock::<rhai::Array>()?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(separator);
                    }
                    if let Ok(i) = item.as_int() {
                        out.push_str(&i.to_string());
                    } else if item.is_string() {
                        out.push_str(&display_value(item));
                    } else {
                        return None;
                    }
                }
            }
            Part::If(test, then, otherwise) => {
                let branch = if truthy(&*value(test)?)? { then } else { otherwise };
                write_parts(out, branch, scope, points)?;
            }
        }
    }
    Some(())
}

/// A finite double as reasons write it: whole numbers without a decimal point, others in
/// their shortest form.
pub fn write_number(out: &mut String, f: f64) {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        out.push_str(&(f as i64).to_string());
    } else {
        let s = f.to_string();
        out.push_str(&s);
        if !s.contains('.') {
            out.push_str(".0");
        }
    }
}

/// Whether minijinja's `if` takes a value as true: `None` for a kind this path leaves to it.
fn truthy(v: &Dynamic) -> Option<bool> {
    if v.is_unit() {
        Some(false)
    } else if let Ok(b) = v.as_bool() {
        Some(b)
    } else if let Ok(i) = v.as_int() {
        Some(i != 0)
    } else if let Ok(f) = v.as_float() {
        Some(f != 0.0)
    } else if v.is_string() {
        Some(!display_value(v).is_empty())
    } else if v.is::<super::engine::Date>() || v.is::<super::engine::Timestamp>() {
        Some(true)
    } else {
        v.read_lock::<rhai::Array>().map(|items| !items.is_empty())
    }
}

/// A value as the reason templates' formatter writes it: whole numbers without a decimal
/// point, other decimals as minijinja shows them, text and dates as they read.
fn write_value(out: &mut String, v: &Dynamic) -> Option<()> {
    if let Ok(i) = v.as_int() {
        out.push_str(&i.to_string());
    } else if let Ok(f) = v.as_float() {
        if !f.is_finite() {
            return None;
        }
        write_number(out, f);
    } else if v.is_string() || v.is::<super::engine::Date>() || v.is::<super::engine::Timestamp>() {
        out.push_str(&display_value(v));
    } else {
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    /// The reason templates' environment (the `money` filter, the number formatter) with
    /// `source` as template `t`.
    fn template_env(source: &str) -> Environment<'static> {
        let mut env = environment();
        env.add_template_owned("t", source.to_string()).unwrap();
        env
    }

    #[test]
    fn plain_templates_parse_and_others_do_not() {
        assert_eq!(
            parse("ARR {{ arr | money }} over {{seats}} seats").unwrap(),
            [
                Part::Text("ARR ".into()),
                Part::Money("arr".into()),
                Part::Text(" over ".into()),
                Part::Value("seats".into()),
                Part::Text(" seats".into())
            ]
        );
        assert_eq!(
            parse("add {{ m | join(', ') }}{% if c %}, CSAT {{ c }}{% else %}!{% endif %}").unwrap(),
            [
                Part::Text("add ".into()),
                Part::Join("m".into(), ", ".into()),
                Part::If(
                    "c".into(),
                    vec![Part::Text(", CSAT ".into()), Part::Value("c".into())],
                    vec![Part::Text("!".into())]
                ),
            ]
        );
        for other in [
            "{{ -x | money }}",
            "{{ --x }}",
            "{{ a.b.c }}",
            "{{ a[0] }}",
            "{{ x | join(sep) }}",
            "{{ x | join(', ', 'y') }}",
            "{{ x | upper }}",
            "{% if x %}y",
            "{% if x %}{% if y %}z{% endif %}{% endif %}",
            "{% if x > 1 %}y{% endif %}",
            "{% if x %}y{% elif z %}w{% endif %}",
            "{% for x in y %}{{ x }}{% endfor %}",
            "{% else %}",
            "{%- if x %}y{% endif %}",
            "line\n",
            "{{ x }",
            "{{- x }}",
            "{{ none }}",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    /// A field of another rule set's result, as `{{ health.grade }}` reads it.
    #[test]
    fn fields_read_as_minijinja_writes_them() {
        let source = "health {{ h.grade }}{% if h.score %}, {{ h.score }} points{% endif %}";
        let env = template_env(source);
        let parts = parse(source).unwrap();
        let map = |grade: Option<Dynamic>, score: Dynamic| {
            let mut m = rhai::Map::new();
            if let Some(g) = grade {
                m.insert("grade".into(), g);
            }
            m.insert("score".into(), score);
            Dynamic::from_map(m)
        };
        let cases = [
            (map(Some(Dynamic::from("green".to_string())), Dynamic::from_float(82.5)), true),
            (map(Some(Dynamic::from("red".to_string())), Dynamic::from_float(0.0)), true),
            (map(Some(Dynamic::from("red".to_string())), Dynamic::UNIT), true),
            (map(Some(Dynamic::UNIT), Dynamic::from_float(3.0)), false),
            (map(None, Dynamic::from_float(3.0)), false),
            (Dynamic::UNIT, false),
        ];
        for (h, fast) in cases {
            let mut scope = Scope::new();
            scope.push_dynamic("h", h.clone());
            let got = render(&parts, &scope, 0.0);
            assert_eq!(got.is_some(), fast, "{h:?}");
            if let Some(got) = got {
                let ctx: std::collections::BTreeMap<String, minijinja::Value> =
                    [("h".to_string(), crate::entity::to_template_value(&h))].into();
                assert_eq!(got, env.get_template("t").unwrap().render(ctx).unwrap(), "{h:?}");
            }
        }
    }

    /// `join` and `if` write what minijinja writes, for every kind of value they take, and
    /// leave the others to it.
    #[test]
    fn joins_and_ifs_read_as_minijinja_writes_them() {
        let source = "[{{ v | join(', ') }}] {% if v %}yes {{ w }}{% else %}no{% endif %}.{% if points %}p{% endif %}";
        let env = template_env(source);
        let parts = parse(source).unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let text = |s: &str| Dynamic::from(s.to_string());
        let list = |items: Vec<Dynamic>| Dynamic::from_array(items);
        let values = [
            list(vec![text("crm"), text("billing"), text("it's <new>")]),
            list(vec![text("one")]),
            list(vec![]),
            list(vec![Dynamic::from_int(3), Dynamic::from_int(-4)]),
            list(vec![text("a"), Dynamic::UNIT]),
            list(vec![Dynamic::from_float(2.5)]),
            text(""),
            text("x"),
            Dynamic::from_int(0),
            Dynamic::from_int(2),
            Dynamic::from_float(0.0),
            Dynamic::from_float(-0.0),
            Dynamic::from_float(0.25),
            Dynamic::from_bool(true),
            Dynamic::from_bool(false),
            Dynamic::from(day),
            Dynamic::UNIT,
        ];
        let mut fast = 0;
        for v in &values {
            for points in [0.0, 5.0] {
                let mut scope = Scope::new();
                scope.push_dynamic("v", v.clone());
                scope.push_dynamic("w", text("there"));
                let ctx: std::collections::BTreeMap<String, minijinja::Value> = [
                    ("v".to_string(), crate::entity::to_template_value(v)),
                    ("w".to_string(), minijinja::Value::from("there")),
                    ("points".to_string(), crate::entity::to_template_value(&Dynamic::from_float(points))),
                ]
                .into();
                let expected = env.get_template("t").unwrap().render(ctx);
                if let Some(got) = render(&parts, &scope, points) {
                    assert_eq!(Ok(got), expected.map_err(|e| e.to_string()), "{v:?}");
                    fast += 1;
                }
            }
        }
        // Lists of text and whole numbers, each twice.
        assert_eq!(fast, 4 * 2);
    }

    /// The fast path writes what minijinja writes, value for value.
    #[test]
    fn plain_reasons_read_as_minijinja_writes_them() {
        let source = "v={{ v }} m={{ v | money }} p={{ points }} n={{ -v }}";
        let env = template_env(source);
        let parts = parse(source).unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let values = [
            Dynamic::from_int(0),
            Dynamic::from_int(-42),
            Dynamic::from_int(i64::MAX),
            Dynamic::from_float(3.0),
            Dynamic::from_float(-0.0),
            Dynamic::from_float(2.5),
            Dynamic::from_float(0.1 + 0.2),
            Dynamic::from_float(-1234.5678),
            Dynamic::from_float(1e15),
            Dynamic::from_float(1e20),
            Dynamic::from_float(1.5e-7),
            Dynamic::from_float(123456789.125),
            Dynamic::from("text, with 'quotes' & <tags>".to_string()),
            Dynamic::from(String::new()),
            Dynamic::from(day),
        ];
        let mut fast = 0;
        for v in &values {
            for points in [0.0, 12.0, -7.5, 0.333] {
                let mut scope = Scope::new();
                scope.push_dynamic("v", v.clone());
                let ctx: std::collections::BTreeMap<String, minijinja::Value> = [
                    ("v".to_string(), crate::entity::to_template_value(v)),
                    ("points".to_string(), crate::entity::to_template_value(&Dynamic::from_float(points))),
                ]
                .into();
                // minijinja fails on text and dates (no money, no negation); this path leaves
                // them to it.
                let expected = env.get_template("t").unwrap().render(ctx).map_err(|e| e.to_string());
                if let Some(got) = render(&parts, &scope, points) {
                    assert_eq!(Ok(got), expected, "{v:?}");
                    fast += 1;
                }
            }
        }
        // Everything numeric took the fast path.
        assert_eq!(fast, 12 * 4);
    }
}
