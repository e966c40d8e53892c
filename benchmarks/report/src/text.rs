//! Text made safe for the page, and figures written the way every table writes them.

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}
