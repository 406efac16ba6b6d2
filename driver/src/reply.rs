//! How a request ended: the [`Reply`], and [`RequestError`] for every way it can
//! fail, so that `?` works on requests.

use bytes::Bytes;
use std::string::String;
use weft_core::conn::Outcome;
use weft_core::error::Error;

/// How a request ended, with its payload and error text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The outcome.
    pub outcome: Outcome,
    /// Result payload (empty unless `Ok`).
    pub payload: Bytes,
    /// Error message of an error outcome.
    pub message: Bytes,
}

impl Reply {
    /// The payload of an `Ok` reply, or the failure as a [`RequestError`]:
    ///
    /// ```no_run
    /// # async fn f(h: weft_driver::Handle) -> Result<(), weft_driver::RequestError> {
    /// let answer = h.request(b"greet", b"world", None).await?.into_result()?;
    /// # Ok(()) }
    /// ```
    pub fn into_result(self) -> Result<Bytes, RequestError> {
        Err(match self.outcome {
            Outcome::Ok => return Ok(self.payload),
            Outcome::Error(code) => RequestError::Error {
                code,
                message: String::from_utf8_lossy(&self.message).into_owned(),
            },
            Outcome::NoResponder => RequestError::NoResponder,
            Outcome::DeadlineExceeded => RequestError::DeadlineExceeded,
            Outcome::Cancelled => RequestError::Cancelled,
            Outcome::NotProcessed => RequestError::NotProcessed,
            Outcome::Lost => RequestError::Lost,
        })
    }
}

/// Why a request gave no result. Which ones are safe to retry: `NoResponder`,
/// `NotProcessed` and `Refused` were certainly not executed; `Lost` and
/// `DeadlineExceeded` may have been.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Nobody serves the subject.
    NoResponder,
    /// The deadline passed, here or at the responder.
    DeadlineExceeded,
    /// The responder cancelled it.
    Cancelled,
    /// The responder failed with an application code and message.
    Error {
        /// The application's code.
        code: u64,
        /// The responder's message.
        message: String,
    },
    /// The connection ended before an answer came: it may or may not have run.
    Lost,
    /// The peer closed gracefully without running it: safe to retry elsewhere.
    NotProcessed,
    /// Refused here before it was sent (connection closed, queue full, invalid).
    Refused(Error),
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RequestError::NoResponder => f.write_str("no responder for the subject"),
            RequestError::DeadlineExceeded => f.write_str("the request's deadline passed"),
            RequestError::Cancelled => f.write_str("the responder cancelled the request"),
            RequestError::Error { code, message } => {
                write!(f, "the responder failed with code {code}: {message}")
            }
            RequestError::Lost => {
                f.write_str("the connection ended before an answer (it may have run)")
            }
            RequestError::NotProcessed => {
                f.write_str("the peer closed without processing the request")
            }
            RequestError::Refused(e) => write!(f, "request refused: {e}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for RequestError {
    fn from(e: Error) -> Self {
        RequestError::Refused(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(outcome: Outcome, payload: &[u8], message: &[u8]) -> Reply {
        Reply {
            outcome,
            payload: Bytes::copy_from_slice(payload),
            message: Bytes::copy_from_slice(message),
        }
    }

    #[test]
    fn every_outcome_maps_to_its_result() {
        assert_eq!(
            reply(Outcome::Ok, b"p", b"").into_result(),
            Ok(Bytes::from_static(b"p"))
        );
        let cases = [
            (Outcome::NoResponder, RequestError::NoResponder),
            (Outcome::DeadlineExceeded, RequestError::DeadlineExceeded),
            (Outcome::Cancelled, RequestError::Cancelled),
            (Outcome::NotProcessed, RequestError::NotProcessed),
            (Outcome::Lost, RequestError::Lost),
            (
                Outcome::Error(404),
                RequestError::Error {
                    code: 404,
                    message: "gone".into(),
                },
            ),
        ];
        for (o, want) in cases {
            let got = reply(o, b"", b"gone").into_result();
            assert_eq!(got, Err(want.clone()));
            assert!(!want.to_string().is_empty());
        }
        let refused: RequestError = Error::Closed.into();
        assert!(std::error::Error::source(&refused).is_some());
    }
}
