//! Text for the page: HTML escaping and the number formats the report uses.

use serde_json::Value;

/// `text` with `& < > " '` escaped, safe inside an element or an attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A fraction as a percentage with two decimals (`0.4375` -> `43.75%`);
/// a missing or non-finite figure as a dash.
pub fn pct(x: Option<f32>) -> String {
    match x.filter(|x| x.is_finite()) {
        Some(x) => format!("{:.2}%", x * 100.0),
        None => "\u{2014}".into(),
    }
}

/// A figure with four significant digits or so (`0.001234`, `2.303`,
/// `1234`, `1.2e-7`); a missing or non-finite figure as a dash.
pub fn num(x: Option<f32>) -> String {
    match x {
        Some(x) if x.is_finite() => compact(f64::from(x)),
        Some(x) if x.is_nan() => "NaN".into(),
        Some(x) => format!("{x}"),
        None => "\u{2014}".into(),
    }
}

/// A finite number, short: four significant digits, trailing zeros dropped.
pub fn compact(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-4..1e6).contains(&a) {
        return format!("{x:.2e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 8) as usize;
    let s = format!("{x:.decimals$}");
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// A configuration value in words: an object tagged `kind` (or `family`) as
/// `kind (field value, ...)`, a list as `[a, b]`, `null` as `none`.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), compact),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(value).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            let tag = ["kind", "family"].into_iter().find(|t| o.contains_key(*t));
            let fields: Vec<String> = o
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != tag)
                .map(|(k, v)| format!("{} {}", k.replace('_', " "), value(v)))
                .collect();
            let kind = tag.and_then(|t| o[t].as_str());
            match (kind, fields.is_empty()) {
                (Some(kind), true) => kind.to_string(),
                (Some(kind), false) => format!("{kind} ({})", fields.join(", ")),
                (None, _) => fields.join(", "),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_figures_are_short() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(pct(Some(0.4375)), "43.75%");
        assert_eq!(pct(Some(f32::NAN)), "\u{2014}");
        assert_eq!(compact(1.23456), "1.235");
        assert_eq!(compact(0.1), "0.1");
        assert_eq!(compact(1234.0), "1234");
        assert_eq!(compact(5e-7), "5.00e-7");
        let sgd = serde_json::json!({"kind": "sgd", "momentum": 0.9, "nesterov": true});
        assert_eq!(value(&sgd), "sgd (momentum 0.9, nesterov true)");
    }
}
