//! gRPC plumbing every role shares: Milvus's message size limits (`grpc.*` and
//! `<role>.grpc.*`) on servers and clients, and a clear, non-retriable answer to a
//! request over the limit.
//!
//! A server built with [`limit_server!`] decodes requests up to `serverMaxRecvSize` and
//! encodes answers up to `serverMaxSendSize`; a larger request is refused before any
//! handler runs. tonic says so with OUT_OF_RANGE, which clients such as pymilvus retry
//! until their timeout (a hang to the user); [`refuse_oversized`] turns it into
//! RESOURCE_EXHAUSTED, which they do not retry, as grpc-go (Milvus) answers, with a
//! message naming the limit and the key that sets it. [`is_transient`] tells the gRPC
//! codes worth retrying elsewhere.

use axum::http::{HeaderValue, Response};
use axum::Router;

pub use crate::config::GrpcLimits;

impl Default for GrpcLimits {
    /// Milvus 2.5's `grpc.*` defaults.
    fn default() -> Self {
        GrpcLimits {
            server_max_recv: 256 << 20,
            server_max_send: 512 << 20,
            client_max_recv: 512 << 20,
            client_max_send: 256 << 20,
        }
    }
}

/// Applies the server side of `limits` to a generated tonic server.
#[macro_export]
macro_rules! limit_server {
    ($server:expr, $limits:expr) => {
        $server
            .max_decoding_message_size($limits.server_max_recv)
            .max_encoding_message_size($limits.server_max_send)
    };
}

/// Applies the client side of `limits` to a generated tonic client.
#[macro_export]
macro_rules! limit_client {
    ($client:expr, $limits:expr) => {
        $client
            .max_decoding_message_size($limits.client_max_recv)
            .max_encoding_message_size($limits.client_max_send)
    };
}

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
/// tonic's OUT_OF_RANGE, which it answers for a message over the decoding limit.
const OUT_OF_RANGE: &str = "11";
/// RESOURCE_EXHAUSTED, what grpc-go answers for the same (clients do not retry it).
const RESOURCE_EXHAUSTED: &str = "8";
/// The start of tonic's message for a request over the decoding limit.
const TOO_LARGE: &str = "decoded message length too large";

/// Rewrites tonic's answer to a request over `limit` bytes into RESOURCE_EXHAUSTED with
/// a message that names `key`.
pub fn refuse_oversized(router: Router, key: String, limit: usize) -> Router {
    router.layer(axum::middleware::map_response(
        move |mut res: Response<axum::body::Body>| {
            let key = key.clone();
            async move {
                let h = res.headers();
                let oversized = h.get(GRPC_STATUS).is_some_and(|v| v == OUT_OF_RANGE)
                    && h
                        .get(GRPC_MESSAGE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|m| percent_decode(m).contains(TOO_LARGE));
                if oversized {
                    let text = format!(
                        "request message larger than max ({limit} bytes): the message is over {key}; send it in smaller parts or raise {key}"
                    );
                    let h = res.headers_mut();
                    h.insert(GRPC_STATUS, HeaderValue::from_static(RESOURCE_EXHAUSTED));
                    if let Ok(v) = HeaderValue::from_str(&percent_encode(&text)) {
                        h.insert(GRPC_MESSAGE, v);
                    }
                }
                res
            }
        },
    ))
}

/// gRPC's percent-encoding of `grpc-message` (RFC 3986 unreserved kept, the rest
/// `%XX`-encoded).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// gRPC codes that say the server could not be reached or did not finish, rather than
/// answering about the request: worth trying again, elsewhere.
pub fn is_transient(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_round_trip_through_percent_encoding() {
        let m = "over proxy.grpc.serverMaxRecvSize: 100% of 5 bytes\n";
        assert_eq!(percent_decode(&percent_encode(m)), m);
        assert!(!percent_encode(m).contains('\n'));
        assert_eq!(percent_decode("a%20b%"), "a b%");
    }
}
