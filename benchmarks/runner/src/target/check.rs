//! Every answer is checked: a valid request must succeed or fail with one of the faults the
//! scenario injects; an invalid one must come back as a validation error naming the broken field.
//! Anything else is an unexpected error, counted by kind.

use bench_results::ErrorKind;
use faults::FaultSettings;
use natsrpc::RpcError;
use serde::de::IgnoredAny;

use crate::target::client::SendError;
use crate::workload::Expect;

/// What an answer was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A success, as expected.
    Ok,
    /// An error the scenario asked for: a validation error naming the rule broken on purpose, or
    /// an injected fault's code.
    Expected(ErrorKind),
    /// Anything else: the service's `<kind>:<code>`, `validation:wrong_path`, no answer...
    Unexpected(ErrorKind),
}

/// The error codes the scenario's faults make legitimate.
#[derive(Debug, Clone, Default)]
pub struct ExpectedFaults {
    codes: Vec<&'static str>,
}

impl ExpectedFaults {
    /// The codes `faults` can cause.
    pub fn from_settings(faults: Option<&FaultSettings>) -> Self {
        Self { codes: faults.map(FaultSettings::codes).unwrap_or_default() }
    }

    /// These codes and `code` too (a scenario's own legitimate refusal: a reservation that finds
    /// no stock under contention).
    pub fn also(mut self, code: &'static str) -> Self {
        if !self.codes.contains(&code) {
            self.codes.push(code);
        }
        self
    }
}

/// Judges one answer, in `codec` (the request's: the services answer in it).
pub fn check(
    expect: &Expect,
    codec: natsrpc::Codec,
    answer: &Result<(u16, bytes::Bytes), SendError>,
    faults: &ExpectedFaults,
) -> Verdict {
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(error) => return Verdict::Unexpected(error.kind()),
    };
    let accepted = || match expect {
        Expect::Valid | Expect::Any => Verdict::Ok,
        Expect::Invalid { .. } => Verdict::Unexpected(ErrorKind::Validation("accepted_invalid".into())),
    };
    // The common case without decoding: a success envelope; or any answer, where any will do.
    if matches!(expect, Expect::Any)
        || (*status == 200 && codec == natsrpc::Codec::Json && body.starts_with(br#"{"ok":true"#))
    {
        return accepted();
    }
    // Anything else is read by the framework's own envelope reader, as a typed client reads it.
    let (kind, code) = match natsrpc::envelope::decode_reply::<IgnoredAny>(codec, body) {
        Ok(_) => return accepted(),
        Err(RpcError::Validation { violations, .. }) => {
            if let Expect::Invalid { path, code } = expect {
                return if violations.iter().any(|v| &v.path == path) {
                    Verdict::Expected(ErrorKind::Validation(code.clone()))
                } else {
                    Verdict::Unexpected(ErrorKind::Validation("wrong_path".into()))
                };
            }
            let kind = natsrpc::ErrorKind::Validation;
            (kind, kind.default_code().to_string())
        }
        Err(RpcError::Remote(error)) => (error.kind, error.code),
        Err(RpcError::Decode(missing)) if missing.path.as_deref() == Some("error") => {
            return Verdict::Unexpected(ErrorKind::Envelope(format!("no_error_{status}")));
        }
        Err(_) => return Verdict::Unexpected(ErrorKind::Envelope(format!("unreadable_{status}"))),
    };
    match expect {
        Expect::Valid if faults.codes.contains(&code.as_str()) => Verdict::Expected(ErrorKind::Fault(code)),
        _ => Verdict::Unexpected(ErrorKind::answered(kind.as_str(), &code)),
    }
}

/// Judges an echo control's answer: the body must come back as sent.
pub fn check_echo(sent: &[u8], answer: &Result<(u16, bytes::Bytes), SendError>) -> Verdict {
    match answer {
        Ok((_, body)) if body.as_ref() == sent => Verdict::Ok,
        Ok(_) => Verdict::Unexpected(ErrorKind::Echo("different_body".into())),
        Err(error) => Verdict::Unexpected(error.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: natsrpc::Codec = natsrpc::Codec::Json;

    fn answer(status: u16, body: &str) -> Result<(u16, bytes::Bytes), SendError> {
        Ok((status, bytes::Bytes::from(body.to_string())))
    }

    fn invalid(path: &str) -> Expect {
        Expect::Invalid { path: path.into(), code: "luhn".into() }
    }

    #[test]
    fn successes_validation_errors_and_faults() {
        let none = ExpectedFaults::default();
        assert_eq!(check(&Expect::Valid, JSON, &answer(200, r#"{"ok":true,"data":{}}"#), &none), Verdict::Ok);
        let rejected = r#"{"ok":false,"error":{"status":400,"kind":"validation","code":"validation_failed","message":"m","violations":[{"path":"payment.card.number","code":"luhn","message":"m"}]}}"#;
        assert_eq!(
            check(&invalid("payment.card.number"), JSON, &answer(400, rejected), &none),
            Verdict::Expected("validation:luhn".into())
        );
        assert_eq!(
            check(&invalid("items[0].sku"), JSON, &answer(400, rejected), &none),
            Verdict::Unexpected("validation:wrong_path".into()),
            "a validation error about another field is not the one injected"
        );
        assert_eq!(
            check(&invalid("x"), JSON, &answer(200, r#"{"ok":true,"data":1}"#), &none),
            Verdict::Unexpected(ErrorKind::Validation("accepted_invalid".into()))
        );
        assert_eq!(
            check(&Expect::Valid, JSON, &answer(400, rejected), &none),
            Verdict::Unexpected("validation:validation_failed".into())
        );

        let declined = r#"{"ok":false,"error":{"status":422,"kind":"business","code":"payment_declined","message":"m"}}"#;
        assert_eq!(
            check(&Expect::Valid, JSON, &answer(422, declined), &none),
            Verdict::Unexpected("business:payment_declined".into())
        );
        let faults = FaultSettings { payment_decline_rate: 0.1, ..FaultSettings::default() };
        let expected = ExpectedFaults::from_settings(Some(&faults));
        assert_eq!(
            check(&Expect::Valid, JSON, &answer(422, declined), &expected),
            Verdict::Expected("fault:payment_declined".into())
        );
    }

    #[test]
    fn messagepack_answers_are_read_in_messagepack() {
        let none = ExpectedFaults::default();
        let msgpack = natsrpc::Codec::MsgPack;
        let encode = |value: serde_json::Value| -> Result<(u16, bytes::Bytes), SendError> {
            Ok((200, bytes::Bytes::from(msgpack.encode(&value).unwrap())))
        };
        let success = encode(serde_json::json!({"ok": true, "data": {"sku": "S"}}));
        assert_eq!(check(&Expect::Valid, msgpack, &success, &none), Verdict::Ok);
        let rejected = encode(serde_json::json!({"ok": false, "error": {"status": 400, "kind": "validation",
            "code": "validation_failed", "message": "m", "violations": [{"path": "sku", "code": "length", "message": "m"}]}}));
        assert_eq!(
            check(&invalid("sku"), msgpack, &rejected, &none),
            Verdict::Expected("validation:luhn".into()),
            "the code counted is the one the mix names"
        );
        assert_eq!(
            check(&Expect::Valid, JSON, &success, &none),
            Verdict::Unexpected("envelope:unreadable_200".into()),
            "MessagePack read as JSON is garbage"
        );
    }

    #[test]
    fn transport_failures_and_garbage_are_unexpected() {
        let none = ExpectedFaults::default();
        assert_eq!(
            check(&Expect::Valid, JSON, &Err(SendError::Timeout), &none),
            Verdict::Unexpected("transport:timeout".into())
        );
        assert_eq!(
            check(&Expect::Valid, JSON, &answer(502, "Bad Gateway"), &none),
            Verdict::Unexpected("envelope:unreadable_502".into())
        );
        assert_eq!(
            check(&Expect::Valid, JSON, &answer(500, r#"{"ok":false}"#), &none),
            Verdict::Unexpected("envelope:no_error_500".into())
        );
        // A kind newer than this build reads as `other`, its code kept.
        let unknown_kind =
            r#"{"ok":false,"error":{"status":500,"kind":"cosmic_ray","code":"x","message":"m"}}"#;
        assert_eq!(
            check(&Expect::Valid, JSON, &answer(500, unknown_kind), &none),
            Verdict::Unexpected("other:x".into())
        );
        assert_eq!(check(&Expect::Any, JSON, &answer(502, "Bad Gateway"), &none), Verdict::Ok, "any answer");
        assert_eq!(
            check(&Expect::Any, JSON, &Err(SendError::NoResponders), &none),
            Verdict::Unexpected("transport:no_responders".into()),
            "but an answer"
        );
        assert_eq!(check_echo(b"abc", &answer(200, "abc")), Verdict::Ok);
        assert_eq!(
            check_echo(b"abc", &answer(200, "abd")),
            Verdict::Unexpected("echo:different_body".into())
        );
    }
}
