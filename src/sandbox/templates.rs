//! Message templates: the model, the WABA template-management API
//! (`GET/POST/DELETE /{version}/{waba-id}/message_templates`, reference §6) and status changes,
//! each announced with a `message_template_status_update` webhook.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sandbox;
use super::messages::{GraphFailure, authorize_waba};
pub use crate::cloud_api::template::{Template as SandboxTemplate, demo_templates, placeholders};

#[derive(Deserialize)]
pub struct ListQuery {
    pub name: Option<String>,
    pub status: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// `GET /{version}/{waba-id}/message_templates`
pub async fn list(
    State(sb): State<Sandbox>,
    Path((_v, waba)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(f) = authorize_waba(&sb, &waba, &headers) {
        return f.into_response();
    }
    let all: Vec<SandboxTemplate> = sb
        .lock()
        .templates
        .iter()
        .filter(|t| t.waba_id == waba)
        .filter(|t| q.name.as_ref().is_none_or(|n| &t.name == n))
        .filter(|t| {
            q.status
                .as_ref()
                .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
        })
        .cloned()
        .collect();
    let start = q
        .after
        .as_ref()
        .and_then(|a| all.iter().position(|t| &t.id == a))
        .map(|i| i + 1)
        .unwrap_or(0);
    let limit = q.limit.unwrap_or(25).clamp(1, 1000);
    let page: Vec<_> = all.iter().skip(start).take(limit).cloned().collect();
    let mut paging = json!({"cursors": {"before": page.first().map(|t| t.id.clone()), "after": page.last().map(|t| t.id.clone())}});
    if start + page.len() < all.len() {
        paging["next"] = json!(format!(
            "?after={}&limit={limit}",
            page.last().map(|t| t.id.as_str()).unwrap_or("")
        ));
    }
    Json(json!({"data": page, "paging": paging})).into_response()
}

#[derive(Deserialize)]
pub struct CreateTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    #[serde(default)]
    pub parameter_format: Option<String>,
    pub components: Vec<Value>,
}

/// `POST /{version}/{waba-id}/message_templates`: the template starts `PENDING` and is
/// approved after the configured review delay (or rejected when its body asks for it).
pub async fn create(
    State(sb): State<Sandbox>,
    Path((_v, waba)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(f) = authorize_waba(&sb, &waba, &headers) {
        return f.into_response();
    }
    let req: CreateTemplate = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return GraphFailure::new(
                100,
                "Invalid parameter",
                format!("The template is not valid: {e}"),
            )
            .into_response();
        }
    };
    if let Err(f) = check_create(&req) {
        return f.into_response();
    }
    let mut st = sb.lock();
    if st
        .templates
        .iter()
        .any(|t| t.waba_id == waba && t.name == req.name && t.language == req.language)
    {
        return GraphFailure::new(
            100,
            "Invalid parameter",
            format!(
                "Content in this language already exists for template {}",
                req.name
            ),
        )
        .into_response();
    }
    st.next_id += 1;
    let id = (2_000_000 + st.next_id).to_string();
    let body_text = req
        .components
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("BODY"))
        .and_then(|c| c.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let named = req.parameter_format.as_deref() == Some("named");
    let template = SandboxTemplate {
        id: id.clone(),
        waba_id: waba.clone(),
        name: req.name.clone(),
        language: req.language.clone(),
        status: "PENDING".into(),
        category: req.category.to_ascii_uppercase(),
        parameter_format: if named { "named" } else { "positional" }.into(),
        components: req.components.clone(),
    };
    let reject = body_text.contains("REJECT_ME");
    st.templates.push(template);
    drop(st);
    let (event, reason) = if reject {
        ("REJECTED", "INVALID_FORMAT")
    } else {
        ("APPROVED", "NONE")
    };
    let delay = sb.settings.template_review_delay;
    let (sb2, id2) = (sb.clone(), id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        set_status(&sb2, &id2, event, Some(reason));
    });
    (
        StatusCode::OK,
        Json(json!({"id": id, "status": "PENDING", "category": req.category.to_ascii_uppercase()})),
    )
        .into_response()
}

/// Template names are lowercase letters, digits and `_`, at most 512; a body is required and
/// placeholders must match the declared parameter format.
fn check_create(req: &CreateTemplate) -> Result<(), GraphFailure> {
    let bad = |d: String| GraphFailure::new(100, "Invalid parameter", d);
    if req.name.is_empty()
        || req.name.len() > 512
        || !req
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad(format!(
            "Template name '{}' must be 1 to 512 lowercase letters, digits or underscores.",
            req.name
        )));
    }
    if !["MARKETING", "UTILITY", "AUTHENTICATION"]
        .contains(&req.category.to_ascii_uppercase().as_str())
    {
        return Err(bad(format!(
            "Category '{}' must be MARKETING, UTILITY or AUTHENTICATION.",
            req.category
        )));
    }
    let body = req
        .components
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("BODY"));
    let Some(text) = body.and_then(|b| b.get("text")).and_then(Value::as_str) else {
        return Err(bad("A template needs a BODY component with text.".into()));
    };
    if text.chars().count() > 1024 {
        return Err(bad("The BODY text is longer than 1024 characters.".into()));
    }
    let named = req.parameter_format.as_deref() == Some("named");
    let params = placeholders(text);
    let positional = params.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()));
    if !params.is_empty() && named == positional {
        return Err(bad(format!(
            "The BODY placeholders {params:?} do not match parameter_format '{}'.",
            req.parameter_format.as_deref().unwrap_or("positional")
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    pub name: Option<String>,
    pub hsm_id: Option<String>,
}

/// `DELETE /{version}/{waba-id}/message_templates?name=…[&hsm_id=…]`
pub async fn delete(
    State(sb): State<Sandbox>,
    Path((_v, waba)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<DeleteQuery>,
) -> Response {
    if let Err(f) = authorize_waba(&sb, &waba, &headers) {
        return f.into_response();
    }
    let Some(name) = q.name else {
        return GraphFailure::new(100, "Invalid parameter", "The parameter name is required.")
            .into_response();
    };
    let ids: Vec<String> = sb
        .lock()
        .templates
        .iter()
        .filter(|t| {
            t.waba_id == waba && t.name == name && q.hsm_id.as_ref().is_none_or(|h| &t.id == h)
        })
        .map(|t| t.id.clone())
        .collect();
    if ids.is_empty() {
        return GraphFailure::new(
            100,
            "Invalid parameter",
            format!("Message template '{name}' not found."),
        )
        .into_response();
    }
    for id in &ids {
        set_status(&sb, id, "DELETED", None);
    }
    sb.lock().templates.retain(|t| !ids.contains(&t.id));
    Json(json!({"success": true})).into_response()
}

/// `POST /sandbox/templates/status`: Meta's review or quality system changes a template.
#[derive(Deserialize)]
pub struct StatusChange {
    pub name: String,
    #[serde(default = "en_us")]
    pub language: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

fn en_us() -> String {
    "en_US".into()
}

pub async fn change_status(State(sb): State<Sandbox>, Json(c): Json<StatusChange>) -> Response {
    let id = sb
        .lock()
        .templates
        .iter()
        .find(|t| t.name == c.name && t.language == c.language)
        .map(|t| t.id.clone());
    match id {
        Some(id) => {
            set_status(
                &sb,
                &id,
                &c.status.to_ascii_uppercase(),
                c.reason.as_deref(),
            );
            Json(json!({"id": id, "status": c.status.to_ascii_uppercase()})).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no template {} in {}", c.name, c.language)})),
        )
            .into_response(),
    }
}

/// Changes a template's status and posts `message_template_status_update`.
pub fn set_status(sb: &Sandbox, id: &str, status: &str, reason: Option<&str>) {
    let template = {
        let mut st = sb.lock();
        let Some(t) = st.templates.iter_mut().find(|t| t.id == id) else {
            return;
        };
        t.status = status.to_string();
        t.clone()
    };
    let value = json!({
        "event": status,
        "message_template_id": template.id.parse::<u64>().unwrap_or(0),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "message_template_category": template.category,
        "reason": reason,
    });
    sb.hooks.push_change(
        &template.waba_id,
        "message_template_status_update",
        value,
        std::time::Duration::ZERO,
    );
}
