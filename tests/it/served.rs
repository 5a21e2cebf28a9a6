//! The real `ringback serve` binary in a child process, for tests that need a process of
//! their own: exact `/metrics` values (the recorder is process-wide), `kill -9`, several
//! nodes on one database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A `ringback serve` child process, killed (SIGKILL) when dropped.
pub struct Served {
    child: Child,
    log: PathBuf,
    pub base: String,
    /// The Cloud API it sends to: its embedded sandbox, or the `RINGBACK_WHATSAPP__API_BASE`
    /// it was given.
    pub sandbox: String,
    pub http: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ringback serve` on free loopback ports with the test secrets, the store in `dir`
/// and `extra` overrides, and waits for its "Ringback is running." log line to learn the
/// addresses it bound.
pub async fn serve(dir: &Path, extra: &[(&str, &str)]) -> Served {
    let log = dir.join(format!("serve-{}.log", uuid::Uuid::now_v7().simple()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringback"));
    cmd.arg("serve")
        .env_remove("RINGBACK_CONFIG")
        .envs(base_env())
        .envs(store_env(dir).await)
        .env("RINGBACK_SERVER__LISTEN", "127.0.0.1:0")
        .env("RINGBACK_SANDBOX__LISTEN", "127.0.0.1:0")
        .env("RINGBACK_LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut child = cmd.spawn().expect("the ringback binary starts");
    let api_base = extra
        .iter()
        .find(|(k, _)| *k == "RINGBACK_WHATSAPP__API_BASE")
        .map(|(_, v)| *v);
    let (addr, sandbox) = eventually_within(Duration::from_secs(30), || {
        let running = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "Ringback is running.")
            .and_then(|l| {
                let addr = l["fields"]["addr"].as_str()?.to_string();
                // Logged with Debug: `Some(127.0.0.1:PORT)`, or `None` with an API base.
                let sandbox = match l["fields"]["sandbox"].as_str()? {
                    "None" => api_base?.to_string(),
                    s => format!("http://{}", s.strip_prefix("Some(")?.strip_suffix(')')?),
                };
                Some((addr, sandbox))
            });
        if running.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "ringback serve exited with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        async move { running }
    })
    .await;
    Served {
        child,
        log,
        base: format!("http://{addr}"),
        sandbox,
        http: reqwest::Client::new(),
    }
}

impl Served {
    /// What the process logged so far, for failure messages.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The last `n` lines it logged, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log(), n)
    }

    /// Posts `body` to `path`; returns the status.
    pub async fn post(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> u16 {
        post_raw(&self.http, &self.base, path, body, headers)
            .await
            .status()
            .as_u16()
    }

    /// Posts a Meta webhook body signed with `secret`; returns the status.
    pub async fn whatsapp(&self, body: &Value, secret: &str) -> u16 {
        let bytes = serde_json::to_vec(body).unwrap();
        let sig = ringback::signature::sign_sha256_hex(secret.as_bytes(), &bytes);
        self.post(
            "/webhooks/whatsapp",
            bytes,
            &[("X-Hub-Signature-256", &sig)],
        )
        .await
    }

    /// Posts a signed generic call event; returns the status.
    pub async fn call(&self, body: &Value) -> u16 {
        post_call(&self.http, &self.base, body)
            .await
            .expect("server reachable")
            .status()
            .as_u16()
    }

    /// `GET url`, which must answer 200 with JSON.
    pub async fn get_json(&self, url: &str) -> Value {
        let r = self.http.get(url).send().await.expect("server reachable");
        let status = r.status();
        let body = r.text().await.expect("response body");
        assert_eq!(status, 200, "GET {url} answered {status}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// The Prometheus text of `/metrics` (which must answer 200).
    pub async fn metrics(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("server reachable");
        let status = r.status();
        let text = r.text().await.expect("response body");
        assert_eq!(status, 200, "/metrics answered {status}: {text}");
        text
    }

    /// The value of one series (name and labels exactly as rendered), `None` if absent.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        self.metrics()
            .await
            .lines()
            .map(crate::support::without_node_label)
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

/// A log file as written so far. Lossy: the process may be midway through a multi-byte
/// character (a reading while it writes), which must not make the whole log vanish.
fn read_log(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A loopback port free right now, for a process that must be told its address up front.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Any `ringback` command in a child process, killed (SIGKILL) when dropped.
pub struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The last `n` lines of its stderr, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&read_log(&self.log), n)
    }
}

/// Runs `ringback` with `args` and `env` (no `RINGBACK_CONFIG` unless `env` names one), its
/// stderr in `log`.
pub fn spawn(args: &[&str], env: &[(String, String)], log: &Path) -> Proc {
    let file = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ringback"))
        .args(args)
        .env_remove("RINGBACK_CONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("the ringback binary starts");
    Proc {
        child,
        log: log.to_path_buf(),
    }
}

/// Waits (20 s at most) until `GET url` answers 2xx.
pub async fn wait_http(http: &reqwest::Client, url: &str) {
    eventually_or(
        Duration::from_secs(20),
        || async {
            let r = http.get(url).send().await.ok()?;
            r.status().is_success().then_some(())
        },
        || format!("GET {url} did not answer 2xx"),
    )
    .await;
}

/// A standalone sandbox already answering, and the environment that starts `ringback serve`
/// against it (a configuration file in `dir` naming both ports, the calls and app secrets,
/// plus `extra` TOML sections; the store is the backend under test, in `dir`). Crash tests
/// start and kill the server as they need.
pub struct Pair {
    pub env: Vec<(String, String)>,
    /// The server's base URL (`http://127.0.0.1:PORT`), once started.
    pub base: String,
    pub sandbox: String,
    _sandbox: Proc,
}

impl Pair {
    pub async fn start(dir: &Path, extra: &str) -> Pair {
        let (sb_port, port) = (free_port(), free_port());
        let config = dir.join("ringback.toml");
        let mut env = store_env(dir).await;
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[whatsapp]\napi_base = \"http://127.0.0.1:{sb_port}\"\napp_secret = \"{APP_SECRET}\"\n[calls]\nsecret = \"{CALLS_SECRET}\"\n{extra}"
            ),
        )
        .unwrap();
        env.push(("RINGBACK_CONFIG".into(), config.display().to_string()));
        let base = format!("http://127.0.0.1:{port}");
        let sb_listen = format!("127.0.0.1:{sb_port}");
        let webhook = format!("{base}/webhooks/whatsapp");
        let sandbox = spawn(
            &["sandbox", "--listen", &sb_listen, "--webhook-url", &webhook],
            &env,
            &dir.join("sandbox.log"),
        );
        let sandbox_url = format!("http://{sb_listen}");
        wait_http(
            &reqwest::Client::new(),
            &format!("{sandbox_url}/are-you-ok"),
        )
        .await;
        Pair {
            env,
            base,
            sandbox: sandbox_url,
            _sandbox: sandbox,
        }
    }

    /// Starts `ringback serve` (its log in `log`) and waits until it answers.
    pub async fn serve(&self, log: &Path) -> Proc {
        let server = spawn(&["serve"], &self.env, log);
        wait_http(&reqwest::Client::new(), &format!("{}/healthz", self.base)).await;
        server
    }
}
