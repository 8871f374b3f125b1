//! The layers of ARCHITECTURE.md hold: every `crate::` path in `src/`
//! (comments aside) names a module of the importing module's layer or of
//! one below it, no two modules import each other in a circle, and every
//! top-level module has its layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top first, as the ```layers block of ARCHITECTURE.md lists them.
fn layers() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("```layers\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a ```layers block");
    let block = &block[..block.find("```").expect("the layers block ends")];
    block
        .lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| !line.is_empty())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`lib` for lib.rs).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_owned()
}

/// The first identifier of `text`.
fn ident(text: &str) -> Option<String> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| text[..end].to_owned())
}

/// The top-level modules a source text names through `crate::` (in `use`
/// lines, groups included, and in paths), comments left out.
fn imports(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        item_start = true;
                        continue;
                    }
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        found.extend(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
        } else {
            found.extend(ident(rest));
        }
    }
    found
}

#[test]
fn every_import_points_down_the_layers_of_architecture_md_and_none_is_circular() {
    let layers = layers();
    let count = layers.len();
    // Higher is further up: the first line of the block is the top.
    let level: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (n.as_str(), count - i)))
        .collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap();
        for to in imports(&source) {
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
        edges.entry(from).or_default();
    }
    let mut problems = Vec::new();
    for (from, targets) in &edges {
        let Some(&from_level) = level.get(from.as_str()) else {
            problems.push(format!("`{from}` has no layer in ARCHITECTURE.md"));
            continue;
        };
        for to in targets {
            match level.get(to.as_str()) {
                None => problems.push(format!(
                    "`{from}` imports `{to}`, which has no layer in ARCHITECTURE.md"
                )),
                Some(&to_level) if to_level > from_level => {
                    problems.push(format!("`{from}` imports `{to}`, a layer above it"))
                }
                Some(_) => {}
            }
        }
    }
    // A circle can only close within one layer: look for one there.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = edges[start].iter().collect();
        while let Some(next) = stack.pop() {
            if next == start {
                problems.push(format!("`{start}` imports itself through other modules"));
                break;
            }
            if seen.insert(next.clone()) {
                stack.extend(edges.get(next).into_iter().flatten());
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_reader_sees_groups_paths_and_skips_comments() {
    let source = "use crate::a::B;\nuse crate::{b, c::{D, E}, d as e};\n// crate::commented\nfn f() { crate::f::g(); }";
    let found: Vec<String> = imports(source).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "d", "f"]);
}
