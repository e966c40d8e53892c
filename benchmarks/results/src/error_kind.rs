//! Why an answer was not a success, as a run counts it: the keys of `expected_errors` and
//! `unexpected_errors`, recorded as `<class>:<code>` (`validation:luhn`, `fault:payment_declined`,
//! `transport:timeout`). The runner judges answers into these; the report reads them back typed
//! instead of by prefix.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an answer was not a success. Compared, hashed and ordered by its recorded form
/// (`business:x` before `fault:y`) without making that text: counts by kind list alphabetically,
/// and two values that record alike are one key.
#[derive(Debug, Clone)]
pub enum ErrorKind {
    /// `validation:<code>`: a validation error. Expected when it names the rule the runner broke
    /// on purpose; unexpected as `accepted_invalid` (an invalid request answered as a success),
    /// `wrong_path` (a validation error about another field), or on a valid request.
    Validation(String),
    /// `fault:<code>`: an error one of the scenario's injected faults causes (always expected).
    Fault(String),
    /// `transport:<what>`: no answer at all.
    NoAnswer(NoAnswer),
    /// `envelope:<what>`: an answer that is not the envelope (`unreadable_502`, `no_error_500`).
    Envelope(String),
    /// `echo:<what>`: an echo control answered with other bytes than it was sent.
    Echo(String),
    /// `flow:<what>`: a flow's step answered without a value the flow captures
    /// (`capture_missing`).
    Flow(String),
    /// `<kind>:<code>`: any other error the service answered with (`business:payment_declined`
    /// where no fault declines payments, `internal:internal`).
    Service {
        /// The envelope's `kind`.
        kind: String,
        /// The envelope's `code`.
        code: String,
    },
}

/// Why there was no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoAnswer {
    /// None within the request timeout.
    Timeout,
    /// Nothing listens on the subject (NATS says so at once).
    NoResponders,
    /// The connection failed.
    Error,
}

impl NoAnswer {
    fn code(self) -> &'static str {
        match self {
            NoAnswer::Timeout => "timeout",
            NoAnswer::NoResponders => "no_responders",
            NoAnswer::Error => "error",
        }
    }
}

impl ErrorKind {
    /// Of its recorded form. Every text reads as some kind: one this build does not know is a
    /// [`ErrorKind::Service`] error, so a newer runner's results still read.
    pub fn parse(text: &str) -> Self {
        let (class, code) = text.split_once(':').unwrap_or(("", text));
        Self::answered(class, code)
    }

    /// An error envelope's `kind` and `code`, as the kind it is once recorded and read back (a
    /// `validation` error is [`ErrorKind::Validation`] however it came).
    pub fn answered(class: &str, code: &str) -> Self {
        let code_of = |code: &str| code.to_string();
        match class {
            "validation" => ErrorKind::Validation(code_of(code)),
            "fault" => ErrorKind::Fault(code_of(code)),
            "envelope" => ErrorKind::Envelope(code_of(code)),
            "echo" => ErrorKind::Echo(code_of(code)),
            "flow" => ErrorKind::Flow(code_of(code)),
            "transport" => match code {
                "timeout" => ErrorKind::NoAnswer(NoAnswer::Timeout),
                "no_responders" => ErrorKind::NoAnswer(NoAnswer::NoResponders),
                "error" => ErrorKind::NoAnswer(NoAnswer::Error),
                _ => ErrorKind::Service { kind: class.into(), code: code.into() },
            },
            _ => ErrorKind::Service { kind: class.into(), code: code.into() },
        }
    }

    /// The class before the `:` (`validation`, `fault`, `transport`, or the service's own kind).
    pub fn class(&self) -> &str {
        match self {
            ErrorKind::Validation(_) => "validation",
            ErrorKind::Fault(_) => "fault",
            ErrorKind::NoAnswer(_) => "transport",
            ErrorKind::Envelope(_) => "envelope",
            ErrorKind::Echo(_) => "echo",
            ErrorKind::Flow(_) => "flow",
            ErrorKind::Service { kind, .. } => kind,
        }
    }

    /// The code after the class: the rule, the fault's code, what went wrong.
    pub fn code(&self) -> &str {
        match self {
            ErrorKind::Validation(code)
            | ErrorKind::Fault(code)
            | ErrorKind::Envelope(code)
            | ErrorKind::Echo(code)
            | ErrorKind::Flow(code)
            | ErrorKind::Service { code, .. } => code,
            ErrorKind::NoAnswer(what) => what.code(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.class(), self.code())
    }
}

impl PartialEq for ErrorKind {
    fn eq(&self, other: &Self) -> bool {
        (self.class(), self.code()) == (other.class(), other.code())
    }
}

impl Eq for ErrorKind {}

impl std::hash::Hash for ErrorKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.class(), self.code()).hash(state);
    }
}

impl Ord for ErrorKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.class(), self.code()).cmp(&(other.class(), other.code()))
    }
}

impl PartialOrd for ErrorKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Tests and hand-written figures spell kinds as recorded.
impl From<&str> for ErrorKind {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ErrorKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn every_kind_reads_back_as_written() {
        for text in [
            "validation:luhn",
            "validation:accepted_invalid",
            "fault:payment_declined",
            "transport:timeout",
            "transport:no_responders",
            "transport:error",
            "envelope:unreadable_502",
            "echo:different_body",
            "flow:capture_missing",
            "business:payment_declined",
            "transport:from_a_newer_runner",
            "no_class",
        ] {
            assert_eq!(
                ErrorKind::parse(text).to_string(),
                if text == "no_class" { ":no_class" } else { text }
            );
        }
        assert_eq!(ErrorKind::parse("transport:timeout"), ErrorKind::NoAnswer(NoAnswer::Timeout));
        assert_eq!(ErrorKind::parse("fault:out_of_stock").code(), "out_of_stock");
        // Made another way, the same recorded kind is the same key.
        let spelled = ErrorKind::Service { kind: "validation".into(), code: "luhn".into() };
        assert_eq!(spelled, ErrorKind::Validation("luhn".into()));
        assert_eq!(spelled.cmp(&ErrorKind::Validation("luhn".into())), std::cmp::Ordering::Equal);
    }

    #[test]
    fn counts_by_kind_are_a_json_object_keyed_by_the_recorded_form() {
        let counts =
            BTreeMap::from([(ErrorKind::from("validation:luhn"), 3u64), (ErrorKind::from("fault:x"), 1)]);
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, r#"{"fault:x":1,"validation:luhn":3}"#, "in the order of the recorded text");
        let back: BTreeMap<ErrorKind, u64> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, counts);
    }
}
