//! Text from outside (a request's body or headers, a broker's message) on its way into a header, a
//! log line or a stats field.
//!
//! A caller chooses every byte of what it sends, and some of it comes back in error messages (a
//! field's name, an unknown endpoint's subject, a correlation id). A CR/LF in a NATS header value
//! makes async-nats panic; in an HTTP header it is refused; in a log line it forges the next line; an
//! ESC sequence repaints the terminal of whoever reads the log. So every such value goes through
//! [`escape`] first: printable ASCII passes untouched (and without a copy), anything else becomes a
//! visible escape such as `\r`, `\n` or `\u{1b}`, and the length is bounded. The reply's envelope
//! (its body) keeps the full message, encoded by JSON or MessagePack.
//!
//! ```
//! use natsrpc::escape::escape;
//!
//! assert_eq!(escape("order-42", 64), "order-42");
//! assert_eq!(escape("x\r\ny\u{1b}[31m", 64), r"x\r\ny\u{1b}[31m");
//! assert_eq!(escape("é", 64), r"\u{e9}");
//! assert_eq!(escape(&"a".repeat(100), 10), "aaaaaaa...");
//! ```

use std::borrow::Cow;
use std::fmt::Write;

/// Longest header value natsrpc writes from outside text, in bytes: room for a sentence, not for
/// a payload.
pub const MAX_HEADER_VALUE: usize = 512;

/// Longest correlation id kept as the caller sent it, in bytes (a UUID is 36, a W3C trace parent 55).
pub const MAX_CORRELATION_ID: usize = 128;

/// What marks a value cut at its bound.
const CUT: &str = "...";

/// Whether `text` is already safe everywhere: printable ASCII only, and at most `max_bytes` long.
pub fn is_safe(text: &str, max_bytes: usize) -> bool {
    text.len() <= max_bytes && text.bytes().all(is_printable)
}

/// `text` with every byte outside printable ASCII escaped (`\r`, `\n`, `\t`, `\u{..}`) and cut to
/// at most `max_bytes` (ending in `...` when cut). Borrows when nothing needs changing.
pub fn escape(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if is_safe(text, max_bytes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max_bytes) + 8);
    for c in text.chars() {
        match c {
            ' '..='~' => out.push(c),
            '\r' => out.push_str(r"\r"),
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            other => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(other));
            }
        }
        if out.len() > max_bytes {
            break;
        }
    }
    if out.len() > max_bytes {
        // The output is ASCII, so any byte index is a character boundary.
        out.truncate(max_bytes.saturating_sub(CUT.len()));
        out.push_str(&CUT[..CUT.len().min(max_bytes)]);
    }
    Cow::Owned(out)
}

/// [`escape`] with the header bound, [`MAX_HEADER_VALUE`].
pub fn header_value(text: &str) -> Cow<'_, str> {
    escape(text, MAX_HEADER_VALUE)
}

const fn is_printable(byte: u8) -> bool {
    matches!(byte, b' '..=b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_is_borrowed_and_the_rest_escaped_and_bounded() {
        assert!(matches!(escape("abc-123 ok", 64), Cow::Borrowed(_)));
        assert_eq!(escape("a\0b\u{7f}c", 64), r"a\u{0}b\u{7f}c");
        assert_eq!(escape("tab\there", 64), r"tab\there");
        assert_eq!(escape("\u{202e}evil", 64), r"\u{202e}evil", "bidi overrides are escaped");
        assert_eq!(escape("😀", 64), r"\u{1f600}");
        for max in 0..12 {
            let cut = escape("\r\n\r\n\r\n\r\n", max);
            assert!(cut.len() <= max, "{max}: {cut:?}");
            assert!(cut.bytes().all(is_printable), "{cut:?}");
        }
        assert_eq!(escape(&"x".repeat(600), MAX_HEADER_VALUE).len(), MAX_HEADER_VALUE);
    }
}
