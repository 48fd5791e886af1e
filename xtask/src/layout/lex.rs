//! Just enough lexing of Rust source for the layout check: comments and
//! string / char literals blanked out, then a flat list of tokens with their
//! line numbers, without the items that `#[cfg(test)]` guards.

/// One token: an identifier or keyword, `::`, or a single punctuation character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    /// The token's text.
    pub s: String,
    /// Its 1-based line.
    pub line: usize,
}

/// Tokens of `text`, comments and literals skipped and `#[cfg(test)]` items removed.
pub fn tokens(text: &str) -> Vec<Tok> {
    drop_cfg_test(tokenize(&strip(text)))
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with comments and string, byte-string and char literals replaced by
/// spaces; newlines are kept, so line numbers do not move.
pub fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    };
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        let start = i;
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(end) = raw_string_end(&c, i).filter(|_| !prev_ident) {
            i = end;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            i += 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let end = i.min(c.len());
        blank(&mut out, &c[start..end]);
        i = end;
    }
    out
}

/// Where a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i` ends.
fn raw_string_end(c: &[char], mut i: usize) -> Option<usize> {
    if c.get(i) == Some(&'b') {
        i += 1;
    }
    if c.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let mut hashes = 0;
    while c.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if c.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(c.len())
}

/// Splits stripped source into tokens.
fn tokenize(code: &str) -> Vec<Tok> {
    let c: Vec<char> = code.chars().collect();
    let (mut toks, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        let start = i;
        if c[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        } else if c[i].is_whitespace() {
            i += 1;
            continue;
        } else if is_ident(c[i]) {
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            i += 1;
        }
        toks.push(Tok {
            s: c[start..i].iter().collect(),
            line,
        });
    }
    toks
}

/// Index just past the bracket that closes the `{`, `(` or `[` at `i`.
pub fn close(t: &[Tok], i: usize) -> usize {
    let mut depth = 0usize;
    for (j, tok) in t.iter().enumerate().skip(i) {
        match tok.s.as_str() {
            "{" | "(" | "[" => depth += 1,
            "}" | ")" | "]" => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if depth == 0 {
            return j + 1;
        }
    }
    t.len()
}

/// Index just past the item starting at `i`: its `;`, or the `}` closing its
/// body, whichever comes first outside brackets.
pub fn item_end(t: &[Tok], mut i: usize) -> usize {
    while i < t.len() {
        match t[i].s.as_str() {
            "{" => return close(t, i),
            "(" | "[" => i = close(t, i),
            ";" => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Removes every `#[cfg(test)]` attribute and the item it guards.
fn drop_cfg_test(t: Vec<Tok>) -> Vec<Tok> {
    let is = |i: usize, s: &str| t.get(i).is_some_and(|x| x.s == s);
    let attr = ["#", "[", "cfg", "(", "test", ")", "]"];
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        if !attr.iter().enumerate().all(|(k, s)| is(i + k, s)) {
            out.push(t[i].clone());
            i += 1;
            continue;
        }
        i += attr.len();
        // Further attributes on the same item.
        while is(i, "#") && is(i + 1, "[") {
            i = close(&t, i + 1);
        }
        i = item_end(&t, i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        tokens(src).into_iter().map(|t| t.s).collect()
    }

    #[test]
    fn comments_and_literals_are_blanked() {
        let src = "// crate::a\nlet s = \"crate::b\"; /* crate::c /* x */ */ let r = r#\"crate::d\"#;\nlet c = '\"'; f::<'a>(crate::e)";
        let code = strip(src);
        assert_eq!(code.lines().count(), 3);
        assert!(!code.contains("crate::a") && !code.contains("crate::b"));
        assert!(!code.contains("crate::c") && !code.contains("crate::d"));
        assert!(code.contains("crate::e") && code.contains("'a"));
    }

    #[test]
    fn cfg_test_items_are_dropped() {
        let src =
            "use a;\n#[cfg(test)]\n#[allow(x)]\nmod tests { use b; }\n#[cfg(test)]\nuse c;\nuse d;";
        assert_eq!(texts(src), ["use", "a", ";", "use", "d", ";"]);
        assert_eq!(tokens(src)[3].line, 7);
    }
}
