//! Test harness: a real server on `127.0.0.1:0` with a store of its own and the embedded
//! sandbox, plus typed helpers that speak each provider's wire format.
//!
//! The store is the backend `RINGBACK_TEST_STORE` names (see [`backend`]): the whole suite runs
//! once per backend, unchanged, and only the few tests about SQLite itself step aside on
//! PostgreSQL ([`sqlite_only`]).

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ringback::app::Running;
use ringback::config::{Config, Settings};
use ringback::signature;
use serde_json::{Value, json};

pub const CALLS_SECRET: &str = "test-calls-secret";
pub const APP_SECRET: &str = "test-app-secret";
pub const TWILIO_TOKEN: &str = "test-twilio-token";
pub const PNID: &str = "100000000000001";
pub const BUSINESS: &str = "+15550100001";

#[allow(dead_code)] // Not every test binary module uses every field.
pub struct TestApp {
    pub running: Option<Running>,
    pub base: String,
    pub sandbox: String,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub dir: tempfile::TempDir,
}

/// Environment-style overrides every test app gets, except its store: that is
/// [`store_env`], which may have to create a PostgreSQL schema first.
pub fn base_env() -> Vec<(String, String)> {
    [
        ("RINGBACK_CALLS__SECRET", CALLS_SECRET.into()),
        ("RINGBACK_WHATSAPP__APP_SECRET", APP_SECRET.into()),
        ("RINGBACK_WHATSAPP__VERIFY_TOKEN", "test-verify".into()),
        ("RINGBACK_TWILIO__AUTH_TOKEN", TWILIO_TOKEN.into()),
        ("RINGBACK_OUTBOX__RETRY_DELAYS_MS", "[50, 100, 200]".into()),
        ("RINGBACK_SANDBOX__STATUS_DELAY_MS", "10".into()),
        ("RINGBACK_SERVER__MAX_BODY_BYTES", "65536".into()),
        // Webhook receivers in tests listen on loopback; their retries come quickly, and the
        // last delay makes the schedule span the three days configuration requires.
        (
            "RINGBACK_OUTBOUND_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES",
            "true".into(),
        ),
        (
            "RINGBACK_OUTBOUND_WEBHOOKS__RETRY_DELAYS_MS",
            "[100, 200, 400, 259200000]".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The store backend the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend `RINGBACK_TEST_STORE` names: `sqlite` (the default, a file per test app) or
/// `postgres` (a schema per test app on the server at `RINGBACK_TEST_POSTGRES_URL`).
pub fn backend() -> Backend {
    match std::env::var("RINGBACK_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => panic!("RINGBACK_TEST_STORE is '{other}': use sqlite or postgres"),
    }
}

/// The database a PostgreSQL run uses. `scripts/test-postgres-db` creates a fresh one per run
/// and passes it here; every test app gets a schema of its own in it.
const POSTGRES_ENV: &str = "RINGBACK_TEST_POSTGRES_URL";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where the schema of the store in a directory is remembered (see [`store_url`]).
const SCHEMA_FILE: &str = "postgres-schema";

/// The URL of the store that lives in `dir`, as `RINGBACK_STORE__URL` takes it.
///
/// On SQLite, the file `dir/ringback.db`. On PostgreSQL, a schema of its own
/// (`t_<uuid>`), created on the first call and remembered in `dir`, so that a test that
/// restarts its app on the same directory finds its data again, as it would in the file.
pub async fn store_url(dir: &Path) -> String {
    match backend() {
        Backend::Sqlite => format!("sqlite://{}", dir.join("ringback.db").display()),
        Backend::Postgres => {
            let server = postgres_server();
            let marker = dir.join(SCHEMA_FILE);
            let schema = match std::fs::read_to_string(&marker) {
                Ok(schema) => schema,
                Err(_) => {
                    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
                    create_schema(&server, &schema).await;
                    std::fs::write(&marker, &schema).expect("the schema name is written");
                    schema
                }
            };
            schema_url(&server, &schema)
        }
    }
}

/// `RINGBACK_STORE__…` overrides for an app whose store lives in `dir`: its URL and, on
/// PostgreSQL, the call spool. The spool sits next to a SQLite file by default; without one it
/// would be `ringback-calls.spool` in the working directory, one file for every test app.
pub async fn store_env(dir: &Path) -> Vec<(String, String)> {
    let mut env = vec![("RINGBACK_STORE__URL".to_string(), store_url(dir).await)];
    if backend() == Backend::Postgres {
        let spool = dir.join("calls.spool").display().to_string();
        env.push(("RINGBACK_STORE__CALL_SPOOL".to_string(), spool));
    }
    env
}

/// The PostgreSQL server (and database) in `RINGBACK_TEST_POSTGRES_URL`.
fn postgres_server() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| POSTGRES_DEFAULT.into())
}

async fn create_schema(server: &str, schema: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL did not answer at {server} ({e}). The cluster tests (always) and the \
                 whole suite with RINGBACK_TEST_STORE=postgres use the database in \
                 {POSTGRES_ENV} (default {POSTGRES_DEFAULT}): start PostgreSQL, set \
                 {POSTGRES_ENV} to one that runs, or run through scripts/test-postgres-db, which \
                 checks it and makes a fresh database."
            )
        });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema} through {server}: {e}"));
    conn.close().await.ok();
}

/// A schema of its own on the PostgreSQL server in `RINGBACK_TEST_POSTGRES_URL`, whichever
/// backend the rest of the suite uses: for the tests of several nodes sharing one database,
/// which only PostgreSQL supports. It is empty; the first `ringback serve` migrates it.
pub struct PgSchema {
    server: String,
    pub name: String,
}

impl PgSchema {
    /// Creates it; panics naming `RINGBACK_TEST_POSTGRES_URL` when PostgreSQL does not answer.
    pub async fn create() -> Self {
        let server = postgres_server();
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        create_schema(&server, &name).await;
        PgSchema { server, name }
    }

    /// The store URL whose connections use this schema (`RINGBACK_STORE__URL`).
    pub fn url(&self) -> String {
        schema_url(&self.server, &self.name)
    }

    /// A pool on this schema, for what a test reads directly (leases, migrations, messages).
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("the test schema {} opens: {e}", self.name))
    }

    /// Drops the schema and everything in it, once no process uses it. A failed test skips
    /// this and leaves the schema to look at (its name is in the failure message).
    pub async fn remove(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.server).await {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await;
            conn.close().await.ok();
        }
    }
}

/// `server` with every connection's `search_path` set to `schema`, in the form sqlx's
/// `PgConnectOptions` reads from a URL: `options=-c search_path=…`, percent-encoded, appended
/// to whatever options the URL has.
fn schema_url(server: &str, schema: &str) -> String {
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-c%20search_path%3D{schema}")
}

/// For a test about SQLite itself (its file, its error codes): on PostgreSQL it says so and
/// returns `true`, and the test returns at once; on SQLite it returns `false`.
///
/// The line goes to the real stderr (not `eprintln!`, which libtest captures and shows only
/// for failures), so every run's log names each test that did not run and why.
pub fn sqlite_only(why: &str) -> bool {
    if backend() == Backend::Sqlite {
        return false;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    let _ = writeln!(
        std::io::stderr(),
        "{test}: does not apply to PostgreSQL ({why}); not run"
    );
    true
}

/// The test app's database, opened beside the app: for what has no API (an event's note, a
/// flagged event) and for the few tests that break the store on purpose. Queries go through
/// [`on_db!`], so each is written once and compiled for both backends.
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Opens `store_url` (the app's `settings.store_url`, or [`store_url`]).
    pub async fn open(store_url: &str) -> Self {
        let fail = |e: sqlx::Error| -> ! { panic!("the test store {store_url} opens: {e}") };
        if store_url.starts_with("sqlite:") {
            Db::Sqlite(
                sqlx::SqlitePool::connect(store_url)
                    .await
                    .unwrap_or_else(|e| fail(e)),
            )
        } else {
            Db::Postgres(
                sqlx::PgPool::connect(store_url)
                    .await
                    .unwrap_or_else(|e| fail(e)),
            )
        }
    }

    pub async fn close(self) {
        on_db!(self, pool => pool.close().await)
    }
}

/// `on_db!(db, pool => body)`: `body` with `pool` bound to the pool of `db`, whichever backend it
/// is. The body is compiled once per backend, so one query text serves both (`$N` placeholders
/// read the same in each).
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::support::Db::Sqlite($pool) => $body,
            $crate::support::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a server with extra `RINGBACK_…` overrides.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = base_env();
    env.extend(store_env(dir.path()).await);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Config::load_with_env(None, env)
        .expect("config loads")
        .build()
        .expect("config builds");
    start(settings, dir).await
}

pub async fn start(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(settings, dir, sandbox_listener).await
}

/// As [`start`], the sandbox on a listener bound already (whose address the configuration
/// names, as an assistant's model does).
pub async fn start_on(
    settings: Settings,
    dir: tempfile::TempDir,
    sandbox_listener: tokio::net::TcpListener,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = ringback::app::start(settings.clone(), listener, Some(sandbox_listener))
        .await
        .expect("app starts");
    TestApp {
        base: format!("http://{}", running.addr),
        sandbox: format!("http://{}", running.sandbox_addr.expect("sandbox runs")),
        running: Some(running),
        http: reqwest::Client::new(),
        settings,
        dir,
    }
}

impl TestApp {
    /// Posts a signed generic call event.
    pub async fn call(&self, body: Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(&body).unwrap();
        let sig = signature::sign_sha256_hex(CALLS_SECRET.as_bytes(), &bytes);
        self.raw_post("/webhooks/calls", bytes, &[("X-Ringback-Signature", &sig)])
            .await
    }

    /// A missed call (no-answer) from `from` with id `call_id`.
    pub async fn missed_call(&self, call_id: &str, from: &str) -> reqwest::Response {
        self.call(json!({"call_id": call_id, "from": from, "to": BUSINESS, "status": "no-answer"}))
            .await
    }

    pub async fn raw_post(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        post_raw(&self.http, &self.base, path, body, headers).await
    }

    /// Posts a Meta webhook body signed with the app secret.
    pub async fn whatsapp(&self, body: &Value) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let sig = signature::sign_sha256_hex(APP_SECRET.as_bytes(), &bytes);
        self.raw_post(
            "/webhooks/whatsapp",
            bytes,
            &[("X-Hub-Signature-256", &sig)],
        )
        .await
    }

    /// Posts a Twilio form, signed exactly as Twilio signs (URL + sorted params, HMAC-SHA1).
    pub async fn twilio(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        let mut sorted: Vec<_> = params.to_vec();
        sorted.sort();
        let signed: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
        let sig = signature::sign_sha1_base64(
            TWILIO_TOKEN.as_bytes(),
            &[url.as_bytes(), signed.as_bytes()],
        );
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        self.http
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", sig)
            .body(form)
            .send()
            .await
            .unwrap()
    }

    /// A user writes to the business through the sandbox (opens the window).
    pub async fn user_writes(&self, from: &str, text: &str) {
        let r = self
            .http
            .post(format!("{}/sandbox/simulate/message", self.sandbox))
            .json(&json!({"from": from, "text": text, "name": "Asha"}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "simulated message answered {status}: {:?}",
            r.text().await
        );
    }

    pub async fn fault(&self, errors: Value) {
        self.sandbox_post("faults", json!({"phone_number_id": PNID, "errors": errors}))
            .await;
    }

    /// `POST /sandbox/{path}` (faults, webhook faults), which must succeed.
    pub async fn sandbox_post(&self, path: &str, body: Value) {
        let r = self
            .http
            .post(format!("{}/sandbox/{path}", self.sandbox))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "sandbox/{path} answered {status}: {:?}",
            r.text().await
        );
    }

    /// `GET url`, which must answer 200 with JSON: any other status panics with the status
    /// and the body, so a check that "nothing was stored" cannot pass on a 401 or a 500.
    pub async fn get_json(&self, url: &str) -> Value {
        let r = self.http.get(url).send().await.expect("server reachable");
        let status = r.status();
        let body = r.text().await.expect("response body");
        assert_eq!(status, 200, "GET {url} answered {status}: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {url} answered 200 without JSON ({e}): {body}"))
    }

    /// The `data` array of a list answer; a missing or non-array `data` panics.
    pub async fn list(&self, url: &str) -> Vec<Value> {
        let v = self.get_json(url).await;
        v["data"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("GET {url} answered without a data array: {v}"))
    }

    pub async fn messages(&self) -> Vec<Value> {
        self.list(&format!("{}/api/v1/messages?limit=1000", self.base))
            .await
    }

    pub async fn message(&self, id: &str) -> Value {
        self.get_json(&format!("{}/api/v1/messages/{id}", self.base))
            .await
    }

    pub async fn calls(&self) -> Vec<Value> {
        self.list(&format!("{}/api/v1/calls?limit=1000", self.base))
            .await
    }

    /// What the sandbox received (the Cloud API requests Ringback made).
    pub async fn sandbox_sent(&self) -> Vec<Value> {
        self.list(&format!("{}/sandbox/messages", self.sandbox))
            .await
    }

    /// Waits until the call `call_id` has a decision other than pending.
    pub async fn decided_call(&self, call_id: &str) -> Value {
        eventually(|| async {
            self.calls()
                .await
                .into_iter()
                .find(|c| c["provider_call_id"] == call_id && c["decision"] != "pending")
        })
        .await
    }

    /// Waits until message `id` reaches `state`.
    pub async fn message_in_state(&self, id: &str, state: &str) -> Value {
        eventually(|| async {
            let m = self.message(id).await;
            (m["state"] == state).then_some(m)
        })
        .await
    }

    /// `POST /api/v1/messages`: status and JSON body.
    #[allow(dead_code)]
    pub async fn send_message(&self, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/messages", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let v = serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("POST /api/v1/messages answered {status} without JSON ({e}): {body}")
        });
        (status, v)
    }

    /// Waits until the template registry has synced the sandbox's templates; returns the list.
    #[allow(dead_code)]
    pub async fn templates_synced(&self) -> Value {
        eventually(|| async {
            let v = self
                .get_json(&format!("{}/api/v1/templates", self.base))
                .await;
            v["data"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
                .then_some(v)
        })
        .await
    }

    /// Waits until the sandbox has delivered at least `n` webhook items with a 200.
    pub async fn webhooks_delivered(&self, n: u64) {
        eventually(|| async {
            let s = self
                .get_json(&format!("{}/sandbox/webhooks", self.sandbox))
                .await;
            let delivered = s["items_delivered"]
                .as_u64()
                .unwrap_or_else(|| panic!("/sandbox/webhooks without items_delivered: {s}"));
            (delivered >= n).then_some(())
        })
        .await
    }

    /// The note of the processed inbound event whose stored JSON contains `needle`, or `None`
    /// while no such event is processed. Read from the database: notes have no API.
    pub async fn event_note(&self, needle: &str) -> Option<String> {
        // The same substring test; SQLite calls it instr, PostgreSQL strpos.
        let sql = match backend() {
            Backend::Sqlite => {
                "SELECT note FROM inbound_events WHERE processed_at IS NOT NULL AND instr(event_json, $1) > 0"
            }
            Backend::Postgres => {
                "SELECT note FROM inbound_events WHERE processed_at IS NOT NULL AND strpos(event_json, $1) > 0"
            }
        };
        let db = Db::open(&self.settings.store_url).await;
        let note: Option<Option<String>> = on_db!(&db, pool => sqlx::query_scalar(sql)
            .bind(needle)
            .fetch_optional(pool)
            .await
            .expect("inbound_events is readable"));
        db.close().await;
        note.flatten()
    }

    #[allow(dead_code)]
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Posts `body` as JSON to `base` + `path` with extra `headers`, for a test app in this process
/// or a `ringback serve` child alike.
pub async fn post_raw(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("server reachable")
}

/// Posts a generic call event signed with the calls secret to the server at `base`. `Err` when
/// the server does not answer, for the tests that kill servers and post again elsewhere.
pub async fn post_call(
    http: &reqwest::Client,
    base: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let sig = signature::sign_sha256_hex(CALLS_SECRET.as_bytes(), &bytes);
    http.post(format!("{base}/webhooks/calls"))
        .header("Content-Type", "application/json")
        .header("X-Ringback-Signature", sig)
        .body(bytes)
        .send()
        .await
}

/// Polls `f` every 20 ms for up to 10 s.
pub async fn eventually<T, F, Fut>(f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(10), f).await
}

/// Polls `f` every 20 ms until it returns `Some`, and panics once `limit` has passed.
///
/// This is the only waiting the tests do: the short pause between polls is not a guess at
/// how long something takes (the condition is checked again after it), unlike sleeping a
/// fixed time and then asserting.
pub async fn eventually_within<T, F, Fut>(limit: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_or(limit, f, String::new).await
}

/// [`eventually_within`], with `explain()` (what the system looked like) in the panic message.
pub async fn eventually_or<T, F, Fut>(
    limit: Duration,
    mut f: F,
    explain: impl FnOnce() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    // A poll interval, not a wait for an outcome: the condition is checked at every tick.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("condition not met within {limit:?}\n{}", explain());
        }
    }
}

/// A Meta `messages` webhook envelope for our test number.
pub fn wa_envelope(value: Value) -> Value {
    let mut v = json!({"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100001", "phone_number_id": PNID}});
    v.as_object_mut()
        .unwrap()
        .extend(value.as_object().unwrap().clone());
    json!({"object": "whatsapp_business_account", "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": v}]}]})
}

/// A Prometheus line without the `node` label every series carries (the node's name differs
/// from machine to machine), so tests can name a series exactly.
pub fn without_node_label(line: &str) -> String {
    let Some(start) = line.find("node=\"") else {
        return line.to_string();
    };
    let Some(len) = line[start + 6..].find('"') else {
        return line.to_string();
    };
    let end = start + 6 + len + 1;
    let (mut a, mut b) = (start, end);
    if line[b..].starts_with(',') {
        b += 1;
    } else if line[..a].ends_with(',') {
        a -= 1;
    }
    let out = format!("{}{}", &line[..a], &line[b..]);
    out.replace("{}", "")
}

#[test]
fn the_node_label_is_dropped_wherever_it_stands() {
    for (line, want) in [
        (r#"a{node="n1"} 1"#, "a 1"),
        (r#"a{x="1",node="n1"} 1"#, r#"a{x="1"} 1"#),
        (r#"a{node="n1",x="1"} 1"#, r#"a{x="1"} 1"#),
        ("a 1", "a 1"),
    ] {
        assert_eq!(without_node_label(line), want);
    }
}

#[test]
fn the_schema_reaches_postgres_as_the_search_path() {
    for server in ["postgres://u@h/db", "postgres://u@h/db?sslmode=disable"] {
        let url = schema_url(server, "t_0123");
        let options: sqlx::postgres::PgConnectOptions = url.parse().expect("the URL parses");
        assert_eq!(
            options.get_options(),
            Some("-c search_path=t_0123"),
            "{url}"
        );
        assert_eq!(options.get_database(), Some("db"), "{url}");
    }
}
