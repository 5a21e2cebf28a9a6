//! A webhook receiver for the tests: an HTTP server on a free port that records every
//! request, answering 503 to the first `fail_first` requests (an endpoint down, then up).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status it answered.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a webhook body is JSON")
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Clone, Default)]
struct Shared {
    got: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<Mutex<usize>>,
    delay: Arc<Mutex<Duration>>,
    /// Requests that reached the handler, answered or not yet.
    arrived: Arc<AtomicUsize>,
    /// What the failing requests are answered (503 unless set).
    failure: Arc<Mutex<u16>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let shared = Shared::default();
        *shared.fail_first.lock().unwrap() = fail_first;
        let app = axum::Router::new()
            .route("/hook", post(take))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, shared }
    }

    /// The failing requests are answered `status` (with a `Location` for a redirect).
    pub fn fail_with(&self, status: u16) {
        *self.shared.failure.lock().unwrap() = status;
    }

    /// Every later request waits this long before it is answered.
    pub fn slow(&self, d: Duration) {
        *self.shared.delay.lock().unwrap() = d;
    }

    /// Requests that arrived, including those still waiting for their answer.
    pub fn arrived(&self) -> usize {
        self.shared.arrived.load(Ordering::SeqCst)
    }

    /// Everything received so far.
    pub fn all(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    /// The bodies of the requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Value> {
        self.all()
            .iter()
            .filter(|r| r.answered < 300)
            .map(Received::json)
            .collect()
    }
}

async fn take(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1]) {
    s.arrived.fetch_add(1, Ordering::SeqCst);
    let delay = *s.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answered = {
        let mut fail = s.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            match *s.failure.lock().unwrap() {
                0 => 503,
                status => status,
            }
        } else {
            204
        }
    };
    s.got.lock().unwrap().push(Received {
        headers,
        body,
        answered,
    });
    let to = ("location", "http://127.0.0.1:9/elsewhere");
    (StatusCode::from_u16(answered).unwrap(), [to])
}
