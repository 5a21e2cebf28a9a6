//! Meta's QR codes and short links (`/{phone-number-id}/message_qrdls`): create (or update,
//! with `code`), list, read and delete, with Meta's limits — a prefilled message of at most 140
//! characters, 2,000 codes per number — and the image Meta would host, served by the sandbox
//! at `/sandbox/qr/{code}.svg|png`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sandbox;
use super::messages::{GraphFailure, authorize_number};
use crate::cloud_api::qr::QrCode;
use crate::links::META_MAX_TEXT_CHARS;

/// Meta's limit of codes and short links per phone number.
const MAX_PER_NUMBER: usize = 2000;

#[derive(Deserialize)]
pub struct CreateQr {
    #[serde(default)]
    code: Option<String>,
    prefilled_message: Option<String>,
    #[serde(default)]
    generate_qr_image: Option<String>,
}

fn invalid(details: impl Into<String>) -> Response {
    GraphFailure::new(100, "Invalid parameter", details).into_response()
}

fn no_such_code(code: &str) -> Response {
    invalid(format!("No QR code '{code}' on this phone number."))
}

/// Where code `code` is in a number's list.
fn position(codes: &[QrCode], code: &str) -> Option<usize> {
    codes.iter().position(|q| q.code == code)
}

fn new_code() -> String {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..14)
        .map(|_| LETTERS[rng.random_range(0..LETTERS.len())] as char)
        .collect()
}

/// The image address, on the host the request came to (the sandbox stands in for Meta's CDN).
fn image_url(headers: &HeaderMap, code: &str, format: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/sandbox/qr/{code}.{}", format.to_lowercase())
}

/// `POST /{version}/{phone-number-id}/message_qrdls`.
pub async fn create(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<CreateQr>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let Ok(Json(req)) = body else {
        return invalid(
            "Send a JSON body with prefilled_message (and generate_qr_image: SVG or PNG).",
        );
    };
    let Some(message) = req.prefilled_message else {
        return invalid("The parameter prefilled_message is required.");
    };
    if message.chars().count() > META_MAX_TEXT_CHARS {
        return invalid(format!(
            "prefilled_message must be at most {META_MAX_TEXT_CHARS} characters."
        ));
    }
    let format = match req.generate_qr_image.as_deref().map(str::to_uppercase) {
        None => None,
        Some(f) if f == "SVG" || f == "PNG" => Some(f),
        Some(f) => return invalid(format!("generate_qr_image must be SVG or PNG, not '{f}'.")),
    };
    let mut state = sb.lock();
    let codes = state.qr_codes.entry(pnid).or_default();
    let qr = match req.code {
        Some(code) => match position(codes, &code) {
            Some(i) => {
                codes[i].prefilled_message = message;
                codes[i].clone()
            }
            None => return no_such_code(&code),
        },
        None => {
            if codes.len() >= MAX_PER_NUMBER {
                return invalid(format!(
                    "A phone number can have at most {MAX_PER_NUMBER} QR codes and short links; delete some first."
                ));
            }
            let code = new_code();
            let qr = QrCode {
                deep_link_url: format!("https://wa.me/message/{code}"),
                code,
                prefilled_message: message,
                qr_image_url: None,
            };
            codes.push(qr.clone());
            qr
        }
    };
    drop(state);
    let mut out = serde_json::to_value(&qr).unwrap_or(Value::Null);
    if let Some(f) = format {
        out["qr_image_url"] = json!(image_url(&headers, &qr.code, &f));
    }
    Json(out).into_response()
}

/// `GET /{version}/{phone-number-id}/message_qrdls`.
pub async fn list(
    State(sb): State<Sandbox>,
    Path((_v, pnid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let data = sb.lock().qr_codes.get(&pnid).cloned().unwrap_or_default();
    Json(json!({"data": data, "paging": {}})).into_response()
}

/// `GET /{version}/{phone-number-id}/message_qrdls/{code}`: Meta answers in a `data` array.
pub async fn show(
    State(sb): State<Sandbox>,
    Path((_v, pnid, code)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let found = sb
        .lock()
        .qr_codes
        .get(&pnid)
        .and_then(|c| position(c, &code).map(|i| c[i].clone()));
    match found {
        Some(q) => Json(json!({"data": [q]})).into_response(),
        None => no_such_code(&code),
    }
}

/// `DELETE /{version}/{phone-number-id}/message_qrdls/{code}`.
pub async fn delete(
    State(sb): State<Sandbox>,
    Path((_v, pnid, code)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(f) = authorize_number(&sb, &pnid, &headers) {
        return f.into_response();
    }
    let mut state = sb.lock();
    let codes = state.qr_codes.entry(pnid).or_default();
    match position(codes, &code) {
        Some(i) => {
            codes.remove(i);
            Json(json!({"success": true})).into_response()
        }
        None => no_such_code(&code),
    }
}

/// `GET /sandbox/qr/{code}.svg|png`: the image of a code, encoding its short link.
pub async fn image(State(sb): State<Sandbox>, Path(file): Path<String>) -> Response {
    let (code, ext) = file.rsplit_once('.').unwrap_or((&file, ""));
    let link = sb
        .lock()
        .qr_codes
        .values()
        .flatten()
        .find(|q| q.code == code)
        .map(|q| q.deep_link_url.clone());
    let Some(link) = link else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown QR code"})),
        )
            .into_response();
    };
    let drawn = match ext {
        "svg" => crate::links::qr::svg(&link, 256).map(|s| ("image/svg+xml", s.into_bytes())),
        "png" => crate::links::qr::png(&link, 8).map(|p| ("image/png", p)),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "ask for .svg or .png"})),
            )
                .into_response();
        }
    };
    match drawn {
        Ok((kind, bytes)) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
