//! `GET /api/openapi.json` and `/api/docs`: the document describes every route `/api/v1`
//! serves (the router is built from the same annotations, and each documented operation is
//! answered by a handler, never by the router's "no route" fallback), with unique operation
//! ids and Ringback's error shape on every operation. (scripts/openapi-test checks it with an
//! independent validator and fuzzes it with schemathesis.)

use reqwest::Method;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn every_documented_operation_is_served_and_every_one_is_described() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut ids = std::collections::HashSet::new();
    let mut count = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} is not unique");
            assert_eq!(
                op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
            // The route exists: a handler answers (any status), not the fallback.
            let url = format!("{}{}", app.base, path.replace("{", "x").replace("}", ""));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path.ends_with("/stream") {
                continue; // an endless stream; its route is checked by the events tests
            }
            let r = app
                .http
                .request(m, &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(!body.contains("no route for"), "{method} {path}: {body}");
        }
    }
    assert_eq!(count, 44, "every /api/v1 operation and /hooks/{{flow}}");
    for expected in [
        "/api/v1/messages",
        "/api/v1/conversations/{id}/close",
        "/hooks/{name}",
        "/api/v1/links/{code}/{image}",
    ] {
        assert!(paths.contains_key(expected), "{expected}");
    }
    assert!(doc["paths"]["/api/v1/messages"]["post"]["requestBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_reference_page_lists_the_operations() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(format!("{}/api/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<code class=\"method\">POST</code> <code>/api/v1/messages</code>"),
        "{html}"
    );
    assert!(
        html.contains("idempotency_key"),
        "the request body is shown: {html}"
    );
}
