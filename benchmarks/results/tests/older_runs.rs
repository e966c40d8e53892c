//! Every `results.json` a shipped runner wrote still reads: the checked-in runs of
//! `tests/fixtures/runs` (schema 1), and a file from a newer runner is refused by name.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bench_results::{Load, ResultsError, RunResults, SCHEMA};

fn runs() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs");
    let mut runs: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    runs.sort();
    runs
}

/// Where `written` lacks or changes something `original` has (`None` when it has it all): a field
/// renamed, dropped or read into another shape would show here. Fields added since are fine.
fn lost(original: &serde_json::Value, written: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| match b.get(key) {
            None => Some(format!("{at}.{key} is gone")),
            Some(again) => lost(value, again, &format!("{at}.{key}")),
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| lost(x, y, &format!("{at}[{i}]")))
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        (a, b) if a == b => None,
        (a, b) => Some(format!("{at}: {a} became {b}")),
    }
}

#[test]
fn every_older_run_reads_and_writes_back_the_same() {
    assert!(runs().len() >= 2);
    for run in runs() {
        let original: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
        let results = RunResults::read(&run.join("results.json")).unwrap();
        let written = serde_json::to_value(&results).unwrap();
        assert_eq!(lost(&original, &written, ""), None, "{}", run.display());
        assert!(results.schema <= SCHEMA);
        assert!(!results.scenarios.is_empty() && results.scenarios.iter().all(|s| !s.stacks.is_empty()));
        assert!(results.scenarios.iter().any(|s| matches!(s.load, Load::Closed { .. })));
        // Written again and read back, nothing is lost or changed.
        let dir = std::env::temp_dir().join(format!("natsrpc-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        results.write(&dir).unwrap();
        let again = RunResults::read(&dir.join("results.json")).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&results).unwrap());
        let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
        let rows: usize = results.scenarios.iter().flat_map(|s| &s.stacks).map(|s| s.repetitions.len()).sum();
        assert_eq!(summary.lines().count(), rows + 1, "{summary}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_newer_schema_and_a_broken_file_are_named() {
    let dir = std::env::temp_dir().join(format!("natsrpc-results-newer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(runs()[0].join("results.json")).unwrap();
    let newer = text.replacen("\"schema\": 1", &format!("\"schema\": {}", SCHEMA + 1), 1);
    assert_ne!(newer, text, "the fixture names its schema");
    std::fs::write(dir.join("results.json"), newer).unwrap();
    let error = RunResults::read(&dir.join("results.json")).unwrap_err();
    assert!(matches!(error, ResultsError::Newer { .. }), "{error}");
    assert!(error.to_string().contains("newer than this build reads"), "{error}");
    std::fs::write(dir.join("results.json"), &text[..text.len() / 2]).unwrap();
    let error = RunResults::read(&dir.join("results.json")).unwrap_err();
    assert!(
        matches!(error, ResultsError::Json { .. }) && error.to_string().contains("results.json"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
