//! `/webhooks/*`: the same four steps for every provider — verify, parse, commit, acknowledge.
//! Nothing is acknowledged before the ingestor has committed it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, RawBody};
use crate::inbound::twilio::{self, Params};
use crate::inbound::{IngestRequest, KeyedEvent, Rejected, generic};
use crate::store::IngestCounts;
use crate::telemetry;
use crate::time::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/whatsapp",
            post(whatsapp_event).get(whatsapp_handshake),
        )
        .route(twilio::VOICE_PATH, post(twilio_voice))
        .route(twilio::DIAL_STATUS_PATH, post(twilio_dial_status))
        .route("/webhooks/calls", post(generic_call))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Records a refusal in logs and metrics and turns it into the HTTP answer.
fn refuse(source: &'static str, r: Rejected) -> ApiError {
    let reason = match &r {
        Rejected::BadSignature(_) => "signature",
        Rejected::Malformed(_) => "malformed",
        Rejected::NotConfigured(_) => "not_configured",
    };
    telemetry::webhook_rejected(source, reason, &r.to_string());
    r.into()
}

/// Commits the events of one request; returns once they are durable.
async fn commit(
    s: &AppState,
    source: &'static str,
    raw: Bytes,
    events: Vec<KeyedEvent>,
) -> Result<IngestCounts, ApiError> {
    let req = IngestRequest {
        source,
        raw: raw.to_vec(),
        events,
        received_at: now_ms(),
    };
    let counts = s.ingestor.submit(req).await?;
    telemetry::webhook_events(source, counts.inserted, counts.duplicates);
    Ok(counts)
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn whatsapp_handshake(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<Handshake>,
) -> Response {
    match s.whatsapp.handshake(
        q.mode.as_deref(),
        q.verify_token.as_deref(),
        q.challenge.as_deref(),
    ) {
        Some(challenge) => {
            (StatusCode::OK, [("content-type", "text/plain")], challenge).into_response()
        }
        None => {
            telemetry::webhook_rejected("whatsapp", "verify_token", "hub.verify_token mismatch");
            ApiError::new(StatusCode::FORBIDDEN, "verify_token_mismatch", "hub.mode must be 'subscribe' and hub.verify_token must equal whatsapp.verify_token").into_response()
        }
    }
}

async fn whatsapp_event(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    telemetry::webhook_received("whatsapp");
    s.whatsapp
        .verify(header(&headers, "x-hub-signature-256"), &body)
        .map_err(|r| refuse("whatsapp", r))?;
    let events = s.whatsapp.parse(&body).map_err(|r| refuse("whatsapp", r))?;
    commit(&s, "whatsapp", body, events).await?;
    Ok(StatusCode::OK)
}

async fn generic_call(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    telemetry::webhook_received("generic");
    s.generic
        .verify(header(&headers, generic::SIGNATURE_HEADER), &body)
        .map_err(|r| refuse("generic", r))?;
    let event = s
        .generic
        .parse(&body, now_ms())
        .map_err(|r| refuse("generic", r))?;
    let counts = commit(&s, "generic", body, vec![event]).await?;
    let status = if counts.inserted > 0 {
        "accepted"
    } else {
        "duplicate"
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": status})),
    )
        .into_response())
}

/// The URL Twilio requested, as Twilio saw it (it signs this).
fn twilio_url(s: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match &s.settings.public_base_url {
        Some(base) => format!("{base}{path}"),
        None => format!(
            "http://{}{path}",
            header(headers, "host").unwrap_or("localhost")
        ),
    }
}

/// Verifies and parses a Twilio form POST.
fn twilio_form<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(&'a twilio::TwilioSource, Params), ApiError> {
    telemetry::webhook_received("twilio");
    let src = s.twilio.as_ref().ok_or_else(|| {
        refuse(
            "twilio",
            Rejected::NotConfigured("Twilio is not configured: set twilio.auth_token"),
        )
    })?;
    let params: Params = form_urlencoded::parse(body).into_owned().collect();
    let url = twilio_url(s, headers, uri);
    src.verify(
        header(headers, "x-twilio-signature"),
        header(headers, twilio::SIGNATURE_SETTINGS_HEADER),
        &url,
        &params,
    )
    .map_err(|r| refuse("twilio", r))?;
    Ok((src, params))
}

fn twiml(xml: String) -> Response {
    (StatusCode::OK, [("content-type", "text/xml")], xml).into_response()
}

async fn twilio_voice(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let (src, params) = twilio_form(&s, &headers, &uri, &body)?;
    let event = src
        .parse_voice(&params, now_ms())
        .map_err(|r| refuse("twilio", r))?;
    let base = twilio_url(&s, &headers, &Uri::from_static("/"));
    let action = format!("{}{}", base.trim_end_matches('/'), twilio::DIAL_STATUS_PATH);
    let xml = src.voice_twiml(&action);
    commit(&s, "twilio", body, vec![event]).await?;
    Ok(twiml(xml))
}

async fn twilio_dial_status(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let (src, params) = twilio_form(&s, &headers, &uri, &body)?;
    let event = src
        .parse_dial_status(&params, now_ms())
        .map_err(|r| refuse("twilio", r))?;
    commit(&s, "twilio", body, vec![event]).await?;
    Ok(twiml(twilio::HANGUP_TWIML.to_string()))
}
