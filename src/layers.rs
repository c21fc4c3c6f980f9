//! The import graph of `src/` has no circles: a test, not code.
//!
//! Data and calls flow one way (see the crate's Layout). A module that
//! imports one that imports it back makes the two one unit that cannot be
//! understood, tested or changed apart, which is how the camera core once
//! grew into a catch-all. This reads every source file, takes the modules
//! it names through `crate::` and `super::` paths (and, for a `mod.rs` or
//! `lib.rs`, through its children's names), and fails on any circle. Tests
//! (`mod tests`) are left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`web::state`, `` for the crate root) -> its file's text.
fn modules(root: &Path) -> BTreeMap<String, (String, bool)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_parent = matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            );
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            let text = std::fs::read_to_string(&path).expect("read file");
            out.insert(parts.join("::"), (code_of(&text), is_parent));
        }
    }
    out
}

/// The text without its tests and line comments.
fn code_of(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `crate::` or `super::` in `code`, braces expanded
/// (`crate::{a::B, c}` gives `a::B` and `c`), relative to the crate root.
fn paths(module: &str, code: &str) -> Vec<Vec<String>> {
    let here: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let mut out = Vec::new();
    let parent: Vec<String> = here[..here.len().saturating_sub(1)]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (start, prefix) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code;
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().last();
            rest = &rest[i + start.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let tree = use_tree(rest);
            for p in expand(&tree) {
                let mut full = prefix.clone();
                full.extend(p);
                out.push(full);
            }
        }
    }
    out
}

/// The path or brace group at the start of `s`.
fn use_tree(s: &str) -> String {
    let mut depth = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => break,
            _ => {}
        }
        end = i + c.len_utf8();
    }
    s[..end].to_string()
}

/// `a::{b, c::{d}}` as `[a, b]`, `[a, c, d]`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let Some(open) = tree.find('{') else {
        return vec![tree
            .split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()];
    };
    let head: Vec<String> = tree[..open]
        .split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[from..]);
    let mut out = Vec::new();
    for item in items {
        let item = item.split(" as ").next().unwrap_or("").trim();
        if item.is_empty() || item == "self" {
            out.push(head.clone());
            continue;
        }
        for tail in expand(item) {
            let mut p = head.clone();
            p.extend(tail);
            out.push(p);
        }
    }
    out
}

/// The edges: module -> the modules it names.
fn graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(root);
    let resolve = |path: &[String]| -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let mut edges = BTreeMap::new();
    for (module, (code, is_parent)) in &mods {
        let mut found = paths(module, code);
        if *is_parent {
            // `child::Item` in a mod.rs or lib.rs names its child.
            for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                if let Some((first, _)) = word.split_once("::") {
                    if !first.is_empty() && first != "crate" && first != "super" {
                        let mut p: Vec<String> = module
                            .split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect();
                        p.push(first.to_string());
                        found.push(p);
                    }
                }
            }
        }
        let deps: BTreeSet<String> = found
            .iter()
            .filter_map(|p| resolve(p))
            .filter(|m| m != module)
            .collect();
        edges.insert(module.clone(), deps);
    }
    edges
}

/// A circle through `start`, if any (depth-first search).
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            let mut c = stack[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for d in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, edges, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(c) = visit(m, edges, &mut done, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_graph_has_no_circles() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let edges = graph(&root);
        assert!(edges.len() > 50, "read {} modules", edges.len());
        assert!(
            edges["cam"].iter().all(|d| !matches!(
                d.split("::").next(),
                Some("clips" | "motion" | "mqtt" | "hub" | "web" | "camera" | "control")
            )),
            "cam imports a subsystem above it: {:?}",
            edges["cam"]
        );
        if let Some(c) = circle(&edges) {
            panic!("import circle: {}", c.join(" -> "));
        }
    }

    #[test]
    fn a_circle_is_found() {
        let mut edges = BTreeMap::new();
        edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
        edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
        edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
        assert_eq!(circle(&edges).map(|c| c.len()), Some(4));
        edges.insert("c".to_string(), BTreeSet::new());
        assert_eq!(circle(&edges), None);
    }

    #[test]
    fn use_trees_expand() {
        let p = paths(
            "web::api",
            "use crate::{a::B, c::{d, e::F}};\nuse super::state::S;",
        );
        let joined: Vec<String> = p.iter().map(|p| p.join("::")).collect();
        assert!(joined.contains(&"a::B".to_string()), "{joined:?}");
        assert!(joined.contains(&"c::d".to_string()), "{joined:?}");
        assert!(joined.contains(&"c::e::F".to_string()), "{joined:?}");
        assert!(joined.contains(&"web::state::S".to_string()), "{joined:?}");
    }
}
