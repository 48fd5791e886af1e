//! The file-level import graph of one crate and its circles.
//!
//! The crate's module tree is read from its root file along `mod x;`
//! declarations. Every `use` path and every inline path that starts with
//! `crate::`, `super::`, `self::` or a child module's name is resolved to the
//! file that defines the item it names: a name that a module file re-exports
//! (`pub use` or a plain `use`, globs included) is followed to where it comes
//! from, and a path that stops at a module is an edge to that module's file.
//! Declaring a child (`mod x;`) is not an edge; `#[cfg(test)]` items are left
//! out (see [`super::lex`]).

use super::cycles::closed_walks;
use super::lex::{close, tokens, Tok};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root (`["cpu", "conv"]` for `crate::cpu::conv`).
type ModPath = Vec<String>;

/// One edge of the import graph, with the first place that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The importing file.
    pub from: PathBuf,
    /// The file the used item is defined in.
    pub to: PathBuf,
    /// Line in `from` of the first such use.
    pub line: usize,
    /// The path as written there.
    pub path: String,
}

/// One module: its file and the names it defines, declares and imports.
#[derive(Default)]
struct Module {
    file: usize,
    items: BTreeSet<String>,
    children: BTreeSet<String>,
    /// `use` bindings at module level: name -> path as written.
    imports: BTreeMap<String, ModPath>,
    /// Glob imports at module level, as written.
    globs: Vec<ModPath>,
}

/// A path in the code: where it is written and its segments.
struct Ref {
    file: usize,
    scope: ModPath,
    segs: ModPath,
    line: usize,
}

/// What a path names.
enum Res {
    /// An item or module defined in this file.
    Found(usize),
    /// Something outside the crate.
    External,
    /// A name the check cannot find in the module file it stops at.
    Unknown(usize),
}

/// The module tree of one crate root and the paths written in it.
#[derive(Default)]
struct Crate {
    files: Vec<PathBuf>,
    modules: BTreeMap<ModPath, Module>,
    refs: Vec<Ref>,
    /// `macro_rules!` names and their files: `crate::name!` may name any.
    macros: BTreeMap<String, usize>,
}

/// Import circles of the crate rooted at `root` (`src/lib.rs`, `src/main.rs`,
/// a `src/bin/` file): each circle's edges, one cycle through all its files.
pub fn circles(root: &Path) -> std::io::Result<Vec<Vec<Edge>>> {
    let mut krate = Crate::default();
    let dir = root.parent().unwrap_or(Path::new(".")).to_path_buf();
    krate.load(root, Vec::new(), dir)?;
    Ok(krate.circles())
}

impl Crate {
    /// Reads `file` as module `path`, whose child modules live in `dir`.
    fn load(&mut self, file: &Path, path: ModPath, dir: PathBuf) -> std::io::Result<()> {
        let text = std::fs::read_to_string(file)?;
        let id = self.files.len();
        self.files.push(file.to_path_buf());
        let mut children = Vec::new();
        self.scan(id, &tokens(&text), &path, &mut children);
        for (child, inline) in children {
            let mut cdir = dir.clone();
            cdir.extend(&inline);
            let name = child.last().cloned().unwrap_or_default();
            let flat = cdir.join(format!("{name}.rs"));
            let nested = cdir.join(&name).join("mod.rs");
            if flat.is_file() {
                self.load(&flat, child, cdir.join(&name))?;
            } else if nested.is_file() {
                self.load(&nested, child, cdir.join(&name))?;
            }
        }
        Ok(())
    }

    /// Records the items, imports and paths of one file's tokens; pushes the
    /// file modules it declares (module path, inline modules on the way).
    fn scan(&mut self, id: usize, t: &[Tok], path: &ModPath, out: &mut Vec<(ModPath, ModPath)>) {
        let is = |i: usize, s: &str| t.get(i).is_some_and(|x| x.s == s);
        let ident = |i: usize| {
            t.get(i)
                .map(|x| x.s.as_str())
                .filter(|s| s.starts_with(|c: char| c.is_alphabetic() || c == '_'))
        };
        let new_module = |file| Module {
            file,
            ..Module::default()
        };
        self.modules.insert(path.clone(), new_module(id));
        // Open inline modules: their path and the brace depth inside them.
        let mut scopes: Vec<(ModPath, usize)> = vec![(path.clone(), 0)];
        let (mut depth, mut i) = (0usize, 0);
        while i < t.len() {
            let (scope, scope_depth) = scopes.last().cloned().expect("root scope");
            let top = depth == scope_depth;
            let prev = if i > 0 { t[i - 1].s.as_str() } else { "" };
            match t[i].s.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth = depth.saturating_sub(1);
                    if depth < scope_depth {
                        scopes.pop();
                    }
                }
                "mod" if top => {
                    if let Some(name) = ident(i + 1) {
                        let mut child = scope.clone();
                        child.push(name.to_string());
                        let module = self.modules.get_mut(&scope).expect("scope module");
                        module.children.insert(name.to_string());
                        if is(i + 2, "{") {
                            module.items.insert(name.to_string());
                            self.modules.insert(child.clone(), new_module(id));
                            depth += 1;
                            scopes.push((child, depth));
                            i += 3;
                            continue;
                        }
                        out.push((child, scope[path.len()..].to_vec()));
                    }
                }
                "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union"
                    if top =>
                {
                    if let Some(name) = ident(i + 1) {
                        self.item(&scope, name, id);
                    }
                }
                "macro_rules" if top && is(i + 1, "!") => {
                    if let Some(name) = ident(i + 2) {
                        self.item(&scope, name, id);
                        self.macros.insert(name.to_string(), id);
                    }
                }
                "use" => {
                    let end = t[i..]
                        .iter()
                        .position(|x| x.s == ";")
                        .map_or(t.len(), |p| i + p);
                    let mut leaves = Vec::new();
                    use_tree(&t[i + 1..end], &mut 0, Vec::new(), &mut leaves);
                    for (segs, binding) in leaves {
                        if segs.is_empty() {
                            continue;
                        }
                        let module = self.modules.get_mut(&scope).expect("scope module");
                        if top {
                            match binding {
                                Some(b) if b != "_" => {
                                    module.imports.insert(b, segs.clone());
                                }
                                Some(_) => {}
                                None => module.globs.push(segs.clone()),
                            }
                        }
                        self.refs.push(Ref {
                            file: id,
                            scope: scope.clone(),
                            segs,
                            line: t[i].line,
                        });
                    }
                    i = end + 1;
                    continue;
                }
                s if is(i + 1, "::")
                    && ident(i).is_some()
                    && !matches!(prev, "::" | "$" | "in" | "." | "use") =>
                {
                    let mut segs = vec![s.to_string()];
                    let mut j = i + 1;
                    while is(j, "::") {
                        match ident(j + 1) {
                            Some(n) => segs.push(n.to_string()),
                            None => break,
                        }
                        j += 2;
                    }
                    self.refs.push(Ref {
                        file: id,
                        scope,
                        segs,
                        line: t[i].line,
                    });
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// Records `name` as defined in module `scope` (of file `id`).
    fn item(&mut self, scope: &ModPath, name: &str, id: usize) {
        let module = self.modules.get_mut(scope).expect("scope module");
        module.items.insert(name.to_string());
        debug_assert_eq!(module.file, id);
    }

    /// The absolute module path of `segs` written in module `scope`, or `None`
    /// for a path that does not start inside the crate.
    fn absolute(&self, scope: &[String], segs: &[String]) -> Option<ModPath> {
        let first = segs.first()?.as_str();
        let mut base = scope.to_vec();
        let mut rest = segs;
        match first {
            "crate" => {
                base.clear();
                rest = &segs[1..];
            }
            "self" => rest = &segs[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            name if self.modules.get(scope)?.children.contains(name) => {}
            _ => return None,
        }
        base.extend(rest.iter().filter(|s| *s != "self").cloned());
        Some(base)
    }

    /// The file that defines what the absolute path `segs` names.
    fn resolve(&self, segs: &[String], hops: usize) -> Res {
        let mut k = segs.len();
        while !self.modules.contains_key(&segs[..k]) {
            k -= 1; // the crate root, `[]`, is always there
        }
        let module = &self.modules[&segs[..k]];
        let Some(name) = segs.get(k) else {
            return Res::Found(module.file);
        };
        if module.items.contains(name) {
            return Res::Found(module.file);
        }
        if hops > 16 {
            return Res::Unknown(module.file);
        }
        let follow = |via: &ModPath, rest: &[String]| {
            let mut p = self.absolute(&segs[..k], via)?;
            p.extend(rest.iter().cloned());
            Some(self.resolve(&p, hops + 1))
        };
        if let Some(via) = module.imports.get(name) {
            return follow(via, &segs[k + 1..]).unwrap_or(Res::External);
        }
        for glob in &module.globs {
            if let Some(Res::Found(f)) = follow(glob, &segs[k..]) {
                return Res::Found(f);
            }
        }
        match self.macros.get(name) {
            Some(&f) if k == 0 => Res::Found(f),
            _ => Res::Unknown(module.file),
        }
    }

    /// Every edge between two files, each with its first occurrence.
    fn edges(&self) -> BTreeMap<(usize, usize), (usize, String)> {
        let mut edges = BTreeMap::new();
        for r in &self.refs {
            let Some(abs) = self.absolute(&r.scope, &r.segs) else {
                continue;
            };
            let to = match self.resolve(&abs, 0) {
                // An unknown name (one a macro defines, say): the file the path stops at.
                Res::Found(f) | Res::Unknown(f) => f,
                Res::External => continue,
            };
            if to != r.file {
                edges
                    .entry((r.file, to))
                    .or_insert_with(|| (r.line, r.segs.join("::")));
            }
        }
        edges
    }

    /// Strongly connected groups of files, each as one cycle of edges.
    fn circles(&self) -> Vec<Vec<Edge>> {
        let edges = self.edges();
        let pairs: BTreeSet<(usize, usize)> = edges.keys().copied().collect();
        closed_walks(self.files.len(), &pairs)
            .into_iter()
            .map(|walk| {
                walk.windows(2)
                    .map(|w| {
                        let (line, path) = edges[&(w[0], w[1])].clone();
                        Edge {
                            from: self.files[w[0]].clone(),
                            to: self.files[w[1]].clone(),
                            line,
                            path,
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// Parses a use tree (the tokens between `use` and `;`) from `*i`; pushes one
/// `(path, binding)` per leaf, the binding `None` for a glob.
fn use_tree(
    t: &[Tok],
    i: &mut usize,
    mut prefix: ModPath,
    out: &mut Vec<(ModPath, Option<String>)>,
) {
    if t.first().is_some_and(|x| x.s == "::") && *i == 0 {
        return; // `use ::extern_crate::…`
    }
    while let Some(tok) = t.get(*i) {
        match tok.s.as_str() {
            "{" => {
                let end = close(t, *i) - 1;
                *i += 1;
                while *i < end {
                    use_tree(&t[..end], i, prefix.clone(), out);
                    *i += 1; // the `,`
                }
                *i = end + 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push((prefix, None));
                return;
            }
            "::" => *i += 1,
            "," | "}" => break,
            "as" => {
                let alias = t.get(*i + 1).map(|x| x.s.clone());
                *i += 2;
                out.push((prefix, alias));
                return;
            }
            "self" if !prefix.is_empty() && t.get(*i + 1).is_none_or(|x| x.s != "::") => {
                *i += 1;
                let name = prefix.last().cloned();
                if t.get(*i).is_some_and(|x| x.s == "as") {
                    continue;
                }
                out.push((prefix, name));
                return;
            }
            s => {
                prefix.push(s.to_string());
                *i += 1;
            }
        }
    }
    let name = prefix.last().cloned();
    out.push((prefix, name));
}
