//! `/api/v1/events`: the published events, by cursor, and as a live Server-Sent Events stream
//! that resumes where it left off (`Last-Event-ID`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::super::error::ApiError;
use super::super::extract::ApiQuery;
use super::authorize;

/// Events per stream read.
const STREAM_PAGE: u32 = 500;
/// How often a stream looks for events published on another node.
const STREAM_POLL: Duration = Duration::from_secs(1);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The last event id already seen (0 = from the start).
    #[serde(default)]
    after: i64,
    /// Comma-separated event types; all when absent.
    types: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

fn types(q: &Option<String>) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = q
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    crate::events::check_types(&list).map_err(|e| ApiError::bad_request("invalid_query", e))?;
    Ok(list)
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "events_list",
    params(EventsQuery),
    responses((status = 200, description = "Published events after the cursor, with `next_cursor`", body = serde_json::Value), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let types = types(&q.types)?;
    let events = s
        .store
        .events_after(q.after, &types, q.limit.clamp(1, 1000))
        .await?;
    let next_cursor = events.last().map_or(q.after, |e| e.id);
    let data: Vec<_> = events.iter().map(|e| e.envelope()).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this event id; `Last-Event-ID` wins when both are given. Without either,
    /// the stream starts with the next event published.
    after: Option<i64>,
    types: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events/stream",
    tag = "events",
    operation_id = "events_stream",
    params(StreamQuery),
    responses((status = 200, description = "Server-Sent Events, one per published event (`id` is the cursor; resume with `Last-Event-ID`)", content_type = "text/event-stream", body = String), (status = "4XX", description = "Refused: `error.code` names the problem, `error.message` says what to change", body = crate::http::api::openapi::ErrorBody), (status = "5XX", description = "The server could not do it now (the store is unavailable); try again", body = crate::http::api::openapi::ErrorBody))
)]
pub async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers).await?;
    let types = types(&q.types)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_header",
                    "Last-Event-ID must be an event id this stream sent",
                )
            })
        })
        .transpose()?;
    let after = match resume.or(q.after) {
        Some(a) => a,
        None => latest(&s).await?,
    };
    let events = follow(s, after, types).map(|e| {
        Ok::<_, Infallible>(
            SseEvent::default()
                .id(e.id.to_string())
                .event(e.kind.clone())
                .data(e.envelope().to_string()),
        )
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The id of the newest event (one indexed read, whichever node published it).
pub(in crate::http) async fn latest(s: &AppState) -> Result<i64, ApiError> {
    Ok(s.store.latest_event_id().await?)
}

/// Where one stream stands.
struct Follow {
    s: AppState,
    after: i64,
    types: Vec<String>,
    queue: std::collections::VecDeque<crate::events::Event>,
    published: tokio::sync::watch::Receiver<i64>,
}

/// Every event of `types` published after `after`, as it is published (on this node or, within
/// a second, on another): what the API's stream and the console's live feed send.
pub(in crate::http) fn follow(
    s: AppState,
    after: i64,
    types: Vec<String>,
) -> impl Stream<Item = crate::events::Event> {
    let published = s.published.subscribe();
    let start = Follow {
        s,
        after,
        types,
        queue: Default::default(),
        published,
    };
    futures_util::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(e) = f.queue.pop_front() {
                f.after = e.id;
                return Some((e, f));
            }
            // Marks the current value seen before reading, so a publication after the read
            // wakes the wait below.
            f.published.borrow_and_update();
            match f.s.store.events_after(f.after, &f.types, STREAM_PAGE).await {
                Ok(page) if !page.is_empty() => {
                    f.queue = page.into();
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error.message = %e, "The event stream could not read events; trying again.")
                }
            }
            tokio::select! {
                _ = f.published.changed() => {}
                _ = tokio::time::sleep(STREAM_POLL) => {}
            }
        }
    })
}
