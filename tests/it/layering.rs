//! The module layering of `docs/ARCHITECTURE.md`, checked from the source: every `crate::…`
//! and `super::…` path in `src/` (imports, inline paths, macro calls; comments and string
//! literals are skipped) must point to a module on its own level or below, the top-level
//! modules must not depend on each other in a circle, and neither may sibling modules at any
//! depth (a file and the items of its own parent module are not siblings). There is no list of
//! exceptions. The rule is about the product: unit tests (`#[cfg(test)]` modules, inline or in
//! files named `tests.rs`, `*_tests.rs` or under a `tests/` folder) may drive the stack from
//! above, e.g. build a `lab::Model` to test an adapter method end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first. A module may use only modules on its own level or below.
const LEVELS: &[&[&str]] = &[
    &[
        "value",
        "tensor",
        "rng",
        "interrupt",
        "progress",
        "limits",
        "fsutil",
        "text",
        "num",
    ],
    &["backend", "quant", "gguf"],
    &["model"],
    &[
        "adapter", "train", "data", "eval", "lens", "stats", "table", "plot",
    ],
    &["lab"],
    &["host", "api", "repl", "cli", "bench", "main"],
];

type ModPath = Vec<String>;

/// Source files by module path (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` is the
/// root, `main.rs` is the module `main`).
fn read_sources(dir: &Path) -> BTreeMap<ModPath, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<ModPath, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut m: ModPath = rel
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                if m.last().is_some_and(|l| l == "mod") {
                    m.pop();
                }
                if m == ["lib"] {
                    m.clear();
                }
                out.insert(m, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Whether a module is test-only by its name (`tests`, `…_tests`).
fn is_test_module(m: &ModPath) -> bool {
    m.iter().any(|s| s == "tests" || s.ends_with("_tests"))
}

/// The source without its inline `#[cfg(test)] mod name { … }` blocks (`src` already stripped
/// of comments and strings, so braces balance).
fn without_test_modules(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(k) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..k]);
        let after = &rest[k + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_inline_mod = trimmed.starts_with("mod ")
            && trimmed
                .find('{')
                .is_some_and(|b| trimmed.find(';').is_none_or(|s| b < s));
        if !is_inline_mod {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let open = after.len() - trimmed.len() + trimmed.find('{').unwrap();
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, ch) in after[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The source without comments, string literals and char literals (so that intra-doc links
/// and messages that mention a path are not read as dependencies).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
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
        } else if c[i] == 'r'
            && (c.get(i + 1) == Some(&'"') || c.get(i + 1) == Some(&'#'))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            // Escaped char literal: skip the backslash and the escaped character.
            i += 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Every path that starts with `crate::` or `super::`, with `use` groups expanded
/// (`crate::a::{b, c::{d, e}}` gives `crate::a::b`, `crate::a::c::d`, `crate::a::c::e`).
fn paths(src: &str) -> Vec<Vec<String>> {
    fn ident_at(c: &[char], mut i: usize) -> (String, usize) {
        let start = i;
        while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
            i += 1;
        }
        (c[start..i].iter().collect(), i)
    }
    fn skip_ws(c: &[char], mut i: usize) -> usize {
        while i < c.len() && c[i].is_whitespace() {
            i += 1;
        }
        i
    }
    /// Parses a path (segments, then optionally a `{…}` group) starting at `i` with the given
    /// prefix; pushes every complete path.
    fn parse(c: &[char], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut segs = prefix;
        loop {
            i = skip_ws(c, i);
            if c.get(i) == Some(&'{') {
                i += 1;
                loop {
                    i = skip_ws(c, i);
                    match c.get(i) {
                        Some('}') => return i + 1,
                        Some(',') => i += 1,
                        None => return i,
                        _ => {
                            let before = i;
                            i = parse(c, i, segs.clone(), out);
                            // `x as y`: skip the alias.
                            i = skip_ws(c, i);
                            if c[i..].starts_with(&['a', 's', ' ']) {
                                let (_, j) = ident_at(c, skip_ws(c, i + 3));
                                i = j;
                            }
                            if i == before {
                                i += 1;
                            }
                        }
                    }
                }
            }
            let (id, j) = ident_at(c, i);
            if id.is_empty() {
                if c.get(i) == Some(&'*') {
                    i += 1;
                }
                out.push(segs);
                return i;
            }
            segs.push(id);
            i = j;
            if c.get(i) == Some(&':') && c.get(i + 1) == Some(&':') {
                i += 2;
            } else {
                out.push(segs);
                return i;
            }
        }
    }
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let word_start =
            i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_' || c[i - 1] == ':');
        if word_start {
            for head in ["crate::", "$crate::", "super::"] {
                let h: Vec<char> = head.chars().collect();
                if c[i..].starts_with(&h) {
                    let first = head.trim_start_matches('$').trim_end_matches("::");
                    i = parse(&c, i + h.len(), vec![first.to_string()], &mut out);
                    break;
                }
            }
        }
        i += 1;
    }
    out
}

/// The module a path refers to: the longest prefix that names a module.
fn target(
    from: &ModPath,
    path: &[String],
    modules: &BTreeSet<ModPath>,
    macros: &BTreeMap<String, ModPath>,
) -> ModPath {
    let (mut base, rest): (ModPath, &[String]) = if path[0] == "crate" {
        if let Some(m) = path.get(1).and_then(|name| macros.get(name)) {
            return m.clone();
        }
        (Vec::new(), &path[1..])
    } else {
        // `super` from module `a::b` is `a`; each further `super` goes one up.
        let mut base = from.clone();
        let mut rest = path;
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        (base, rest)
    };
    for seg in rest {
        let mut next = base.clone();
        next.push(seg.clone());
        if modules.contains(&next) {
            base = next;
        } else {
            break;
        }
    }
    base
}

/// The problems of a source tree: uses that go up a level, unplaced top-level modules, and
/// circles between top-level modules or between siblings.
fn check(sources: &BTreeMap<ModPath, String>) -> Vec<String> {
    let level: BTreeMap<&str, usize> = LEVELS
        .iter()
        .enumerate()
        .flat_map(|(l, ms)| ms.iter().map(move |m| (*m, l + 1)))
        .collect();
    let mut modules: BTreeSet<ModPath> = BTreeSet::new();
    for m in sources.keys() {
        for k in 0..=m.len() {
            modules.insert(m[..k].to_vec());
        }
    }
    let mut macros = BTreeMap::new();
    for (m, src) in sources {
        let s = strip(src);
        for part in s.split("macro_rules!").skip(1) {
            let name: String = part
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            macros.insert(name, m.clone());
        }
    }
    // Up-uses first: a circle between levels is usually their consequence.
    let (mut ups, mut unplaced, mut circles) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    // Edges between siblings: parent → (from child, to child) → an example file.
    let mut edges: BTreeMap<ModPath, BTreeMap<(String, String), String>> = BTreeMap::new();
    for (from, src) in sources {
        if is_test_module(from) {
            continue;
        }
        if let Some(top) = from.first() {
            if !level.contains_key(top.as_str()) {
                unplaced.insert(format!(
                    "module `{top}` is on no level (add it to LEVELS and to docs/ARCHITECTURE.md)"
                ));
            }
        }
        for p in paths(&without_test_modules(&strip(src))) {
            let to = target(from, &p, &modules, &macros);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // a module and its own ancestors or descendants
            }
            let (a, b) = (from[common].clone(), to[common].clone());
            if common == 0 {
                let (la, lb) = (level.get(a.as_str()), level.get(b.as_str()));
                if let (Some(la), Some(lb)) = (la, lb) {
                    if lb > la {
                        ups.insert(format!(
                            "{} (level {la}) uses {} (level {lb}): `{}`",
                            from.join("::"),
                            to.join("::"),
                            p.join("::")
                        ));
                    }
                }
            }
            edges
                .entry(from[..common].to_vec())
                .or_default()
                .entry((a, b))
                .or_insert_with(|| from.join("::"));
        }
    }
    for (parent, es) in &edges {
        let graph: BTreeMap<&str, Vec<&str>> = es.keys().fold(BTreeMap::new(), |mut g, (a, b)| {
            g.entry(a.as_str())
                .or_insert_with(Vec::new)
                .push(b.as_str());
            g
        });
        for cycle in cycles(&graph) {
            let scope = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            let via: Vec<String> = cycle
                .windows(2)
                .map(|w| es[&(w[0].to_string(), w[1].to_string())].clone())
                .collect();
            circles.insert(format!(
                "circle in {scope}: {} (in {})",
                cycle.join(" → "),
                via.join(", ")
            ));
        }
    }
    ups.into_iter().chain(unplaced).chain(circles).collect()
}

/// One circle through each back edge of a depth-first search.
fn cycles<'a>(g: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    fn dfs<'a>(
        u: &'a str,
        g: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        out: &mut Vec<Vec<&'a str>>,
    ) {
        state.insert(u, 1);
        stack.push(u);
        for &v in g.get(u).into_iter().flatten() {
            match state.get(v) {
                Some(1) => {
                    let k = stack.iter().position(|x| *x == v).unwrap();
                    let mut c = stack[k..].to_vec();
                    c.push(v);
                    out.push(c);
                }
                Some(_) => {}
                None => dfs(v, g, state, stack, out),
            }
        }
        stack.pop();
        state.insert(u, 2);
    }
    let mut state = BTreeMap::new();
    let mut out = Vec::new();
    for &u in g.keys() {
        if !state.contains_key(u) {
            dfs(u, g, &mut state, &mut Vec::new(), &mut out);
        }
    }
    out
}

#[test]
fn modules_depend_only_downwards_and_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = read_sources(&src);
    assert!(sources.len() > 100, "read {} files", sources.len());
    let problems = check(&sources);
    assert!(
        problems.is_empty(),
        "layering problems (see docs/ARCHITECTURE.md; fix the `uses` lines first, the circles \
         often follow from them; a module may use only its own level or below):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_up_uses_circles_and_unplaced_modules() {
    let files: BTreeMap<ModPath, String> = [
        (vec![], "pub mod model; pub mod adapter; pub mod extra;"),
        (vec!["model"], "pub mod a; pub mod b;"),
        // An up-use hidden in a group, and a sibling circle a ↔ b through `super::`.
        (vec!["model", "a"], "use crate::{value::Row, adapter::{lora::X, Y}};\nuse super::b::B;"),
        (vec!["model", "b"], "fn f() { super::a::g(); }"),
        // Not dependencies: a comment, a string, a raw string, a char literal.
        (vec!["adapter"], "pub mod lora; // crate::lab::Model\nconst S: &str = \"crate::api::x\"; const R: &str = r#\"crate::cli\"#; const C: char = '\"';"),
        (vec!["adapter", "lora"], "use crate::model::a::f;\n#[cfg(test)]\nmod tests { use crate::lab::Model; fn f() { if true { crate::api::g(); } } }\n#[cfg(test)]\nuse crate::cli::h;"),
        // Test-only files may use anything.
        (vec!["adapter", "lora_tests"], "use crate::lab::Model;"),
        (vec!["extra"], ""),
        (vec!["value"], ""),
        (vec!["cli"], ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.into_iter().map(String::from).collect(), v.to_string()))
    .collect();
    let problems = check(&files);
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(
        has("model::a (level 3) uses adapter::lora (level 4)"),
        "{problems:?}"
    );
    assert!(
        has("model::a (level 3) uses adapter (level 4)"),
        "{problems:?}"
    );
    assert!(
        has("circle in model: a → b → a") || has("circle in model: b → a → b"),
        "{problems:?}"
    );
    assert!(
        has("circle in crate: adapter → model → adapter")
            || has("circle in crate: model → adapter → model"),
        "{problems:?}"
    );
    assert!(has("module `extra` is on no level"), "{problems:?}");
    // Up-uses come first, circles last.
    assert!(problems[0].contains(" uses "), "{problems:?}");
    assert!(
        problems[problems.len() - 1].starts_with("circle"),
        "{problems:?}"
    );
    // A `#[cfg(test)] use` outside a test module still counts.
    assert!(
        has("adapter::lora (level 4) uses cli (level 6)"),
        "{problems:?}"
    );
    assert!(
        !problems
            .iter()
            .any(|p| p.contains("lab") || p.contains("api")),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 6, "{problems:?}");
}
