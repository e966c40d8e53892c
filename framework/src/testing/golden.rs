//! Checked-in files generated from code (samples, schemas): a test regenerates them and fails when
//! the checked-in copy is stale; with `UPDATE_SAMPLES` set, it rewrites them instead.

use std::path::Path;

use crate::contract::Request;
use crate::testing::Sample;

/// Compares `content` with the file at `path`, or writes it when `UPDATE_SAMPLES` is set.
pub fn golden_file(path: &Path, content: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_SAMPLES").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        return std::fs::write(path, content).map_err(|e| format!("{}: {e}", path.display()));
    }
    match std::fs::read_to_string(path) {
        Ok(on_disk) if on_disk == content => Ok(()),
        Ok(_) => Err(format!("{} is stale: rerun the tests with UPDATE_SAMPLES=1", path.display())),
        Err(_) => Err(format!("{} is missing: rerun the tests with UPDATE_SAMPLES=1", path.display())),
    }
}

/// [`golden_file`] for a JSON value, pretty-printed with a final newline.
pub fn golden_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    golden_file(path, &(text + "\n"))
}

/// [`golden_json`] for the JSON Schemas that `R` serves in its `INFO` metadata:
/// `dir/{endpoint}.request.json` and `dir/{endpoint}.response.json`.
pub fn golden_schemas<R: Request>(dir: &Path) -> Result<(), String> {
    for (key, schema) in R::endpoint_metadata() {
        let Some(which) = key.strip_suffix("_schema") else { continue };
        let value: serde_json::Value = serde_json::from_str(&schema).map_err(|e| format!("{key}: {e}"))?;
        golden_json(&dir.join(format!("{}.{which}.json", R::ENDPOINT)), &value)?;
    }
    Ok(())
}

/// [`golden_json`] for samples: `dir/{endpoint}.valid.json`, `dir/{endpoint}.invalid.json`, and
/// `dir/invalid-expectations.json` naming the violation each invalid one must come back with.
pub fn golden_samples(dir: &Path, samples: &[Sample]) -> Result<(), String> {
    let mut expectations = serde_json::Map::new();
    for sample in samples {
        golden_json(&dir.join(format!("{}.valid.json", sample.endpoint)), &sample.valid)?;
        golden_json(&dir.join(format!("{}.invalid.json", sample.endpoint)), &sample.invalid.request)?;
        let expected = serde_json::json!({"path": sample.invalid.path, "code": sample.invalid.code});
        expectations.insert(sample.endpoint.to_string(), expected);
    }
    golden_json(&dir.join("invalid-expectations.json"), &serde_json::Value::Object(expectations))
}
