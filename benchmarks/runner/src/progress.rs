//! Where the runner's progress lines go: standard output, or standard error once standard output
//! carries a machine-readable verdict instead (`bench --format json|csv|junit`), so that
//! `bench --format junit > junit.xml` holds the XML alone.

use std::sync::atomic::{AtomicBool, Ordering};

static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// From now on, progress goes to standard error.
pub fn to_stderr() {
    TO_STDERR.store(true, Ordering::Relaxed);
}

/// Writes one progress line where progress goes.
pub fn line(text: std::fmt::Arguments<'_>) {
    if TO_STDERR.load(Ordering::Relaxed) {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// `println!` for progress: to standard output, or standard error after [`to_stderr`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::line(format_args!($($arg)*))
    };
}
