//! The benchmark crates keep a layout a reader can follow: their top-level modules depend on each
//! other without cycles (`crate::a` naming `crate::b` and `b` naming `a` back is refused), so that
//! each can be read knowing only the modules it names. Checked from the sources, for the runner,
//! the report and the results.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of the crate in `src` and the top-level modules it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if ["lib", "main", "bin"].contains(&name.as_str()) {
            continue;
        }
        let mut named = BTreeSet::new();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at + "crate::".len()..];
                let module: String =
                    rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !module.is_empty() && module != name {
                    named.insert(module);
                }
            }
        }
        graph.insert(name, named);
    }
    // Only the crate's own modules (not `crate::BenchError` and the like).
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for named in graph.values_mut() {
        named.retain(|m| modules.contains(m));
    }
    graph
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        std::fs::read_dir(path).unwrap().flat_map(|e| rust_files(&e.unwrap().path())).collect()
    } else if path.extension().is_some_and(|e| e == "rs") {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    }
}

/// A cycle among the modules, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            return Some(path[start..].iter().cloned().chain([module.to_string()]).collect());
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_benchmark_crates_modules_depend_on_each_other_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [root.join("src"), root.join("../report/src"), root.join("../results/src")] {
        let graph = graph(&src);
        assert!(graph.len() >= 5, "{}: {graph:?}", src.display());
        assert_eq!(cycle(&graph), None, "{}: {graph:?}", src.display());
    }
    // The check itself finds a cycle where there is one.
    let looped = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycle(&looped), Some(vec!["a".into(), "b".into(), "a".into()]));
}
