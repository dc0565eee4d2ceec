//! Reasons written without the template engine when their template is plain: text and
//! `{{ name }}` or `{{ name | money }}`, nothing else. A run writes millions of reasons, and
//! most templates are of that form; each gives exactly the text minijinja would (a test
//! holds both to it), and any value this path does not know how to write (a missing
//! value, a list, true/false) sends the reason back to minijinja.

use rhai::{Dynamic, Scope};

use super::row::display_value;

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Value(String),
    Money(String),
}

/// The parts of a plain template, or `None` when it uses anything more.
pub fn parse(source: &str) -> Option<Vec<Part>> {
    // A trailing newline is dropped by minijinja; comments, blocks and whitespace control
    // are not plain.
    if source.contains('\n') || source.contains("{%") || source.contains("{#") {
        return None;
    }
    let mut parts = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        push_text(&mut parts, &rest[..start])?;
        let end = rest[start..].find("}}")? + start;
        let inner = &rest[start + 2..end];
        if inner.starts_with('-') || inner.ends_with('-') {
            return None;
        }
        let part = match inner.split_once('|') {
            None => Part::Value(name(inner)?),
            Some((value, filter)) if filter.trim() == "money" => Part::Money(name(value)?),
            Some(_) => return None,
        };
        parts.push(part);
        rest = &rest[end + 2..];
    }
    push_text(&mut parts, rest)?;
    Some(parts)
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

/// A bare variable name.
fn name(s: &str) -> Option<String> {
    let s = s.trim();
    let mut chars = s.chars();
    let first = chars.next()?;
    let plain = (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    // Names minijinja reads as constants rather than variables.
    let constant = matches!(s, "true" | "false" | "none" | "True" | "False" | "None");
    (plain && !constant).then(|| s.to_string())
}

/// The reason, with `points` as the value of `points`; `None` when a value needs minijinja.
pub fn render(parts: &[Part], scope: &Scope, points: f64) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Value(n) | Part::Money(n) => {
                let points_value;
                let v = if n == "points" {
                    points_value = Dynamic::from_float(points);
                    &points_value
                } else {
                    scope.get(n)?
                };
                if matches!(part, Part::Money(_)) {
                    out.push_str(&super::engine::money(super::engine::number(v)?));
                } else {
                    write_value(&mut out, v)?;
                }
            }
        }
    }
    Some(out)
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
        if f.fract() == 0.0 && f.abs() < 1e15 {
            out.push_str(&(f as i64).to_string());
        } else {
            let s = f.to_string();
            out.push_str(&s);
            if !s.contains('.') {
                out.push_str(".0");
            }
        }
    } else if v.is_string() || v.is::<super::engine::Date>() {
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
        for other in [
            "{{ -x }}",
            "{{ a.b }}",
            "{{ x | join(', ') }}",
            "{% if x %}y{% endif %}",
            "line\n",
            "{{ x }",
            "{{- x }}",
            "{{ none }}",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    /// The fast path writes what minijinja writes, value for value.
    #[test]
    fn plain_reasons_read_as_minijinja_writes_them() {
        let mut env = Environment::new();
        let diags = crate::outputs::load_templates(std::path::Path::new("/nonexistent"), &mut env);
        assert!(diags.is_empty());
        let source = "v={{ v }} m={{ v | money }} p={{ points }}";
        env.add_template_owned("t", source.to_string()).unwrap();
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
                    ("v".to_string(), super::super::row::to_template_value(v)),
                    ("points".to_string(), super::super::row::to_template_value(&Dynamic::from_float(points))),
                ]
                .into();
                let expected = env.get_template("t").unwrap().render(ctx).unwrap();
                if let Some(got) = render(&parts, &scope, points) {
                    assert_eq!(got, expected, "{v:?}");
                    fast += 1;
                }
            }
        }
        // Text and dates have no money; everything numeric took the fast path.
        assert_eq!(fast, 12 * 4);
    }
}
