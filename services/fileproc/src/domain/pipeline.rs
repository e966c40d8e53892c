//! The validation pipeline a completed file goes through, step by step. A failing step names
//! itself and the reason.

use std::sync::LazyLock;

use regex::Regex;

use crate::contracts::{FileType, MAX_FILE_BYTES};
use crate::error::FileError;

/// The steps, in order.
pub const STEPS: [&str; 3] = ["size_limits", "file_type", "content_rules"];

/// What the pipeline learned of a valid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The type the content shows.
    pub detected: FileType,
    /// Data rows, for CSV.
    pub rows: Option<u64>,
}

/// Runs every step on `data`, declared as `declared` of `declared_size` bytes.
pub fn run(data: &[u8], declared: FileType, declared_size: u64) -> Result<Verdict, FileError> {
    let fail = |step: &'static str, reason: String| FileError::PipelineFailed { step, reason };
    let size = data.len() as u64;
    if size != declared_size || size == 0 || size > MAX_FILE_BYTES {
        return Err(fail(
            STEPS[0],
            format!("{size} bytes; declared {declared_size}, allowed 1 to {MAX_FILE_BYTES}"),
        ));
    }
    let detected = detect(data)
        .ok_or_else(|| fail(STEPS[1], "the content is not CSV, JSON, PNG, JPEG or PDF".into()))?;
    if detected != declared {
        return Err(fail(STEPS[1], format!("declared {declared:?} but the content is {detected:?}")));
    }
    let rows = content_rules(data, detected)?;
    Ok(Verdict { detected, rows })
}

/// The type by magic bytes, or for text, by shape.
pub fn detect(data: &[u8]) -> Option<FileType> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(FileType::Png)
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(FileType::Jpeg)
    } else if data.starts_with(b"%PDF-") {
        Some(FileType::Pdf)
    } else {
        let text = std::str::from_utf8(data).ok()?;
        match text.trim_start().chars().next()? {
            '{' | '[' => Some(FileType::Json),
            _ if text.lines().next().is_some_and(|header| header.contains(',')) => Some(FileType::Csv),
            _ => None,
        }
    }
}

#[allow(clippy::expect_used)] // a constant pattern
static COLUMN_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z_][a-z0-9_]{0,63}$").expect("valid"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Integer,
    Number,
    Text,
}

impl Column {
    fn of(value: &str) -> Self {
        if value.parse::<i64>().is_ok() {
            Column::Integer
        } else if is_number(value) {
            Column::Number
        } else {
            Column::Text
        }
    }

    fn admits(self, value: &str) -> bool {
        match self {
            Column::Integer => value.parse::<i64>().is_ok(),
            Column::Number => is_number(value),
            Column::Text => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Column::Integer => "an integer",
            Column::Number => "a number",
            Column::Text => "text",
        }
    }
}

/// A finite number: Rust parses `NaN` and `inf` as floats, which no column of numbers wants.
fn is_number(value: &str) -> bool {
    value.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The content rules' failure: `reason` in words shown to whoever asks about the upload, naming
/// rows and columns by position, never the file's content.
fn broken(reason: impl Into<String>) -> FileError {
    FileError::PipelineFailed { step: STEPS[2], reason: reason.into() }
}

/// Type-specific rules; answers the data rows of a CSV.
fn content_rules(data: &[u8], detected: FileType) -> Result<Option<u64>, FileError> {
    match detected {
        FileType::Csv => csv_rules(data).map(Some),
        FileType::Json => serde_json::from_slice::<serde::de::IgnoredAny>(data)
            .map(|_| None)
            .map_err(|e| broken(format!("not valid JSON: {e}"))),
        FileType::Png if data.get(12..16) != Some(b"IHDR") => Err(broken("PNG without an IHDR header")),
        FileType::Jpeg if !data.ends_with(&[0xff, 0xd9]) => Err(broken("JPEG without its end marker")),
        FileType::Pdf if !data.windows(5).rev().take(1024).any(|w| w == b"%%EOF") => {
            Err(broken("PDF without %%EOF at its end"))
        }
        _ => Ok(None),
    }
}

/// A header of unique snake_case names; every row as wide as the header; each column keeps the type
/// (integer, number, text) of its first row. Linear in the file's size, however wide the header.
///
/// The reasons name rows and columns by position (and a column by its name once the header is
/// known to be snake_case), never by the file's content: they are kept as the upload's outcome and
/// shown to whoever asks.
fn csv_rules(data: &[u8]) -> Result<u64, FileError> {
    let text = std::str::from_utf8(data).map_err(|e| broken(format!("not UTF-8: {e}")))?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').map(str::trim).collect();
    if let Some(bad) = header.iter().position(|name| !COLUMN_NAME.is_match(name)) {
        return Err(broken(format!("header: the name of column {} is not snake_case", bad + 1)));
    }
    let mut first_of = std::collections::HashMap::with_capacity(header.len());
    for (index, name) in header.iter().enumerate() {
        if let Some(first) = first_of.insert(*name, index) {
            return Err(broken(format!("header: column {} has the name of column {}", index + 1, first + 1)));
        }
    }
    let mut types: Vec<Column> = Vec::new();
    let mut rows = 0u64;
    for (index, line) in lines.enumerate() {
        let row = index + 1;
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.len() != header.len() {
            return Err(broken(format!("row {row}: {} values for {} columns", values.len(), header.len())));
        }
        if types.is_empty() {
            types = values.iter().map(|v| Column::of(v)).collect();
        }
        for ((value, column), name) in values.iter().zip(&types).zip(&header) {
            if !column.admits(value) {
                return Err(broken(format!("row {row}, column {name}: not {}", column.name())));
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(broken("no data rows after the header"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_names_itself_when_it_fails() {
        let csv = b"sku,quantity,price\nA-1,2,9.99\nB-2,1,19.5\n";
        assert_eq!(
            run(csv, FileType::Csv, csv.len() as u64).unwrap(),
            Verdict { detected: FileType::Csv, rows: Some(2) }
        );
        let step = |result: Result<Verdict, FileError>| match result {
            Err(FileError::PipelineFailed { step, reason }) => format!("{step}: {reason}"),
            other => format!("{other:?}"),
        };
        assert!(step(run(csv, FileType::Csv, 5)).starts_with("size_limits:"));
        assert!(
            step(run(csv, FileType::Json, csv.len() as u64))
                .starts_with("file_type: declared Json but the content is Csv")
        );
        let bad = b"sku,quantity\nA-1,2\nB-2,two\n";
        assert_eq!(
            step(run(bad, FileType::Csv, bad.len() as u64)),
            "content_rules: row 2, column quantity: not an integer"
        );
        let ragged = b"sku,quantity\nA-1\n";
        assert!(
            step(run(ragged, FileType::Csv, ragged.len() as u64)).contains("row 1: 1 values for 2 columns")
        );
        let header = b"Sku Name,quantity\nA,1\n";
        assert!(step(run(header, FileType::Csv, header.len() as u64)).contains("column 1 is not snake_case"));
        let twice = b"a,b,a\n1,2,3\n";
        assert!(
            step(run(twice, FileType::Csv, twice.len() as u64))
                .ends_with("column 3 has the name of column 1")
        );
        let nan = b"sku,price\nA,1.5\nB,NaN\n";
        assert!(
            step(run(nan, FileType::Csv, nan.len() as u64)).ends_with("row 2, column price: not a number")
        );
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR rest";
        assert_eq!(detect(png), Some(FileType::Png));
        assert!(run(png, FileType::Png, png.len() as u64).is_ok());
        assert!(step(run(b"{\"a\":", FileType::Json, 5)).starts_with("content_rules: not valid JSON"));
    }
}
