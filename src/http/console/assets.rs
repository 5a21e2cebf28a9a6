//! `/assets/{file}`: the console's scripts, styles and vendored chart library (uPlot 1.6.32,
//! MIT, `assets/console/uPlot.LICENSE`), compiled into the binary.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/console/"]
struct Assets;

pub async fn file(Path(name): Path<String>) -> Response {
    let Some(file) = Assets::get(&name) else {
        return super::page::problem(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("There is no console file named {name}."),
            None,
        );
    };
    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "text/plain; charset=utf-8",
    };
    let mut res = file.data.into_owned().into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // The files change only with the binary; an hour is short enough for an upgrade.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}
