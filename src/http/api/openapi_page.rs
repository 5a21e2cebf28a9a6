//! `/api/docs`: the OpenAPI document as a page people read — each operation with its
//! parameters, request body and answers — rendered on the server from the document itself,
//! so it needs no script and no CDN.

use askama::Template;
use serde_json::Value;

pub struct Parameter {
    pub name: String,
    pub place: String,
    pub required: bool,
    pub description: String,
}

pub struct Answer {
    pub status: String,
    pub description: String,
}

pub struct Operation {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub parameters: Vec<Parameter>,
    pub body: Option<String>,
    pub answers: Vec<Answer>,
}

pub struct Section {
    pub tag: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    title: String,
    description: String,
    sections: Vec<Section>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A schema as a short JSON text, references resolved one level deep.
fn schema_text(schema: &Value, doc: &Value) -> String {
    let resolved = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .map_or(schema, |name| &doc["components"]["schemas"][name]);
    serde_json::to_string_pretty(resolved).unwrap_or_default()
}

pub fn render(document: &utoipa::openapi::OpenApi) -> String {
    let doc = serde_json::to_value(document).unwrap_or(Value::Null);
    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| (text(&t["name"]), text(&t["description"])))
                .collect()
        })
        .unwrap_or_default();
    let mut sections: Vec<Section> = tags
        .into_iter()
        .map(|(tag, description)| Section {
            tag,
            description,
            operations: Vec::new(),
        })
        .collect();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(methods) = item.as_object() else {
                continue;
            };
            for (method, op) in methods {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
                let operation = Operation {
                    anchor: format!("{method}-{path}").replace(['/', '{', '}'], "-"),
                    method: method.to_uppercase(),
                    path: path.clone(),
                    summary: text(&op["summary"]),
                    description: text(&op["description"]),
                    parameters: op["parameters"]
                        .as_array()
                        .map(|ps| {
                            ps.iter()
                                .map(|p| Parameter {
                                    name: text(&p["name"]),
                                    place: text(&p["in"]),
                                    required: p["required"].as_bool().unwrap_or(false),
                                    description: text(&p["description"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    body: op["requestBody"]["content"]["application/json"]
                        .get("schema")
                        .map(|s| schema_text(s, &doc)),
                    answers: op["responses"]
                        .as_object()
                        .map(|rs| {
                            rs.iter()
                                .map(|(status, r)| Answer {
                                    status: status.clone(),
                                    description: text(&r["description"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                match sections.iter_mut().find(|s| s.tag == tag) {
                    Some(s) => s.operations.push(operation),
                    None => sections.push(Section {
                        tag,
                        description: String::new(),
                        operations: vec![operation],
                    }),
                }
            }
        }
    }
    sections.retain(|s| !s.operations.is_empty());
    DocsPage {
        title: text(&doc["info"]["title"]),
        description: text(&doc["info"]["description"]),
        sections,
    }
    .render()
    .unwrap_or_else(|e| format!("the reference could not be rendered: {e}"))
}
