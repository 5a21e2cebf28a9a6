//! Templates: the registry with each template's status, category, variables and a preview
//! filled with the sample values Meta keeps (or the variables' names).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::page::{Chrome, html};
use super::session::Visitor;
use crate::cloud_api::template::Template as WaTemplate;
use crate::http::AppState;

pub struct Row {
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub variables: String,
    pub preview: String,
}

#[derive(Template)]
#[template(path = "console/templates.html")]
struct TemplatesPage {
    chrome: Option<Chrome>,
    rows: Vec<Row>,
}

/// The sample values a template was approved with (`example.body_text` for positional
/// variables, `example.body_text_named_params` for named ones), else `[name]`.
fn samples(t: &WaTemplate) -> Vec<String> {
    let body = t.components.iter().find(|c| {
        c["type"]
            .as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case("BODY"))
    });
    let example = body.map(|b| &b["example"]).unwrap_or(&Value::Null);
    t.body_params()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let positional = example["body_text"][0][i].as_str();
            let named = example["body_text_named_params"]
                .as_array()
                .and_then(|a| a.iter().find(|p| p["param_name"] == name.as_str()))
                .and_then(|p| p["example"].as_str());
            positional
                .or(named)
                .map_or_else(|| format!("[{name}]"), str::to_string)
        })
        .collect()
}

pub async fn list(State(s): State<AppState>, visitor: Visitor) -> Response {
    let mut all: Vec<WaTemplate> = s.templates.snapshot().iter().cloned().collect();
    all.sort_by(|a, b| (&a.name, &a.language).cmp(&(&b.name, &b.language)));
    let rows = all
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            language: t.language.clone(),
            category: t.category.to_lowercase(),
            status: t.status.to_lowercase(),
            variables: t
                .body_params()
                .iter()
                .map(|v| format!("{{{{{v}}}}}"))
                .collect::<Vec<_>>()
                .join(" "),
            preview: t.preview(&samples(t)),
        })
        .collect();
    html(
        StatusCode::OK,
        &TemplatesPage {
            chrome: Some(visitor.chrome("templates")),
            rows,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_uses_metas_samples_and_else_the_names() {
        let mut t = WaTemplate::simple("w", 1, "hi", "UTILITY", "Hi {{1}}, see you at {{2}}");
        assert_eq!(t.preview(&samples(&t)), "Hi [1], see you at [2]");
        t.components[0]["example"] = serde_json::json!({"body_text": [["Asha", "10:30"]]});
        assert_eq!(t.preview(&samples(&t)), "Hi Asha, see you at 10:30");
    }
}
