//! Extractors whose refusals are [`ApiError`]s, so every error from Ringback's own routes has
//! the JSON error shape, plus the router's fallbacks and a last-resort middleware for errors
//! produced outside any handler.
//!
//! JSON bodies of `/api/v1` need `Content-Type: application/json` (or `application/*+json`):
//! a browser may send `text/plain` or a form to any origin without asking first (a "simple"
//! cross-site request), but never `application/json`. Requiring it is what keeps a web page
//! the operator visits from making Ringback send messages on the open loopback API.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// `Query<T>` whose refusal (`?limit=-1`) is a 400 `invalid_query`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` whose refusal is a 400 `invalid_path`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(r.status(), "invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(r.status(), "invalid_path", r.body_text())
    }
}

/// The raw body, refused with a JSON 413 when over `server.max_body_bytes`. Webhooks use it:
/// their signatures are over the exact bytes.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| body_refused(r, state.settings.max_body_bytes))
    }
}

/// The raw body of a JSON endpoint: the content type is checked first (415 otherwise).
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            let given = req
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(unsupported_media_type(given.as_deref()));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        Ok(JsonBody(bytes))
    }
}

/// A JSON body deserialized into `T`; a body that does not fit is a 400 `malformed`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request("malformed", format!("the JSON body: {e}")))
    }
}

/// `application/json` or `application/<anything>+json`, with any parameters.
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

/// `text/html`: a console page.
fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"))
}

fn unsupported_media_type(given: Option<&str>) -> ApiError {
    let given = match given {
        Some(g) => format!("Content-Type is '{g}'"),
        None => "there is no Content-Type".to_string(),
    };
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("{given}; send the body as JSON with 'Content-Type: application/json'"),
    )
}

fn body_refused(r: BytesRejection, limit: usize) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::new(r.status(), "unreadable_body", r.body_text())
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than server.max_body_bytes ({limit} bytes)"),
    )
}

/// The router's fallback: no route has this path.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

/// A route has this path, but not this method (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Last resort for errors made outside a handler (a layer, a panic caught by
/// `CatchPanicLayer`): any 4xx/5xx that is not JSON becomes the JSON error shape, keeping the
/// status and the headers that tell the client what to do (`Allow`, `Retry-After`).
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    // The console's pages explain their errors in HTML themselves.
    if !(status.is_client_error() || status.is_server_error())
        || is_json(res.headers())
        || is_html(res.headers())
    {
        return res;
    }
    let (parts, body) = res.into_parts();
    let message = if status.is_server_error() {
        // A 5xx body may carry internals (a panic message); the log has them.
        "internal error; the server log has the details".to_string()
    } else {
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    };
    let mut out = ApiError::new(status, code_for(status), message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn json_content_types_are_recognised() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/merge-patch+json",
            "application/vnd.api+json; q=1",
        ] {
            assert!(is_json(&headers(ok)), "{ok}");
        }
        for refused in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(&headers(refused)), "{refused}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn plain_text_errors_become_json_and_keep_allow() {
        let res = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
            "",
        )
            .into_response();
        let out = json_errors(res).await;
        assert_eq!(out.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(out.headers()[header::ALLOW], "GET,HEAD");
        assert!(is_json(out.headers()));
        let body = axum::body::to_bytes(out.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");

        let panic = (StatusCode::INTERNAL_SERVER_ERROR, "secret internals").into_response();
        let out = json_errors(panic).await;
        let body = axum::body::to_bytes(out.into_body(), 4096).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret internals"));

        let ok = (StatusCode::OK, "<Response/>").into_response();
        assert!(!is_json(json_errors(ok).await.headers()));
    }
}
