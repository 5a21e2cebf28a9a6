//! Several `ringback serve` nodes on one PostgreSQL schema, as a cluster is deployed: every
//! node takes webhooks, the holder of the `leader` lease decides and sends. One standalone
//! sandbox is the Cloud API of all of them and counts what arrives; its status webhooks go to
//! one node that stays up. These tests need PostgreSQL whichever backend the rest of the suite
//! runs on ([`PgSchema`]), and fail, naming `RINGBACK_TEST_POSTGRES_URL`, when it does not
//! answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::served::{Proc, Served, free_port, serve, spawn, wait_http};
use crate::support::*;

/// Held by the two tests that run three nodes: on a small machine, six nodes at once would
/// measure the machine (the pacing test allows 1 %), not Ringback.
static THREE_NODES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The leader lease, in seconds: a dead leader is replaced within this.
const LEASE_SECONDS: &str = "2";

/// Three nodes (or two) on one schema, the sandbox they all send to, and a client that plays
/// the PBX.
struct Cluster {
    dir: tempfile::TempDir,
    schema: PgSchema,
    sandbox: Proc,
    sandbox_url: String,
    /// By node id; `None` once killed.
    nodes: BTreeMap<String, Option<Served>>,
    http: reqwest::Client,
}

impl Cluster {
    /// A fresh schema and a standalone sandbox (no Meta limits: the tests measure Ringback's
    /// own pacing; keeps every record) whose webhooks go to `webhook_port`; `sandbox` on top.
    async fn new(webhook_port: u16, sandbox: &[(&str, &str)]) -> Cluster {
        let schema = PgSchema::create().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let sandbox_url = format!("http://127.0.0.1:{port}");
        let mut env = base_env();
        env.push(("RINGBACK_SANDBOX__LIMITS".into(), "false".into()));
        env.extend(sandbox.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let listen = format!("127.0.0.1:{port}");
        let webhook = format!("http://127.0.0.1:{webhook_port}/webhooks/whatsapp");
        let sandbox = spawn(
            &[
                "sandbox",
                "--listen",
                &listen,
                "--webhook-url",
                &webhook,
                "--keep",
                "0",
            ],
            &env,
            &dir.path().join("sandbox.log"),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        wait_http(&http, &format!("{sandbox_url}/are-you-ok")).await;
        Cluster {
            dir,
            schema,
            sandbox,
            sandbox_url,
            nodes: BTreeMap::new(),
            http,
        }
    }

    /// Starts node `id` on the schema, sending to the sandbox; `extra` on top.
    async fn start(&mut self, id: &str, extra: &[(&str, &str)]) {
        let env = self.node_env(id, extra);
        let node = serve(self.dir.path(), &pairs(&env)).await;
        self.nodes.insert(id.to_string(), Some(node));
    }

    /// Starts two nodes at the same instant.
    async fn start_two(&mut self, a: (&str, &[(&str, &str)]), b: (&str, &[(&str, &str)])) {
        let (env_a, env_b) = (self.node_env(a.0, a.1), self.node_env(b.0, b.1));
        let (env_a, env_b) = (pairs(&env_a), pairs(&env_b));
        let (node_a, node_b) = tokio::join!(
            serve(self.dir.path(), &env_a),
            serve(self.dir.path(), &env_b)
        );
        self.nodes.insert(a.0.to_string(), Some(node_a));
        self.nodes.insert(b.0.to_string(), Some(node_b));
    }

    fn node_env(&self, id: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let spool = self.dir.path().join(format!("{id}.spool"));
        let mut env: Vec<(String, String)> = [
            ("RINGBACK_STORE__URL", self.schema.url()),
            // A node's own file, not the cluster's.
            ("RINGBACK_STORE__CALL_SPOOL", spool.display().to_string()),
            ("RINGBACK_CLUSTER__NODE_ID", id.to_string()),
            ("RINGBACK_CLUSTER__LEASE_SECONDS", LEASE_SECONDS.to_string()),
            ("RINGBACK_CLUSTER__POLL_MS", "100".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.push((
            "RINGBACK_WHATSAPP__API_BASE".into(),
            self.sandbox_url.clone(),
        ));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Polls `f` (every 100 ms: each poll asks the sandbox or the database) until it returns
    /// `Some`; after `limit`, panics saying what it waited for and what the cluster looks like.
    async fn wait_for<T, F, Fut>(&self, limit: Duration, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + limit;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("{what}: not within {limit:?}\n{}", self.report().await);
            }
        }
    }

    fn node(&self, id: &str) -> &Served {
        self.nodes[id]
            .as_ref()
            .unwrap_or_else(|| panic!("{id} was killed"))
    }

    /// The base URLs of the nodes, in id order (killed ones included: the PBX does not know).
    fn bases(&self) -> Vec<String> {
        self.nodes
            .values()
            .map(|n| n.as_ref().expect("every node runs").base.clone())
            .collect()
    }

    /// `kill -9` node `id`.
    fn kill(&mut self, id: &str) {
        let node = self.nodes.get_mut(id).and_then(Option::take);
        drop(node.unwrap_or_else(|| panic!("{id} is not running")));
    }

    /// `ringback cluster --json` on the schema.
    async fn cluster_json(&self) -> Value {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ringback"))
            .args(["cluster", "--json"])
            .env_remove("RINGBACK_CONFIG")
            .envs(base_env())
            .env("RINGBACK_STORE__URL", self.schema.url())
            .env("RINGBACK_CLUSTER__LEASE_SECONDS", LEASE_SECONDS)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .expect("ringback cluster runs");
        assert!(
            out.status.success(),
            "ringback cluster --json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ringback cluster --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The node holding the leader lease now, if any.
    async fn leader(&self) -> Option<String> {
        let v = self.cluster_json().await;
        leader_in(&v)
    }

    /// How many messages the sandbox received, all numbers together.
    async fn sandbox_count(&self) -> u64 {
        let v = self
            .get_json(&format!("{}/sandbox/messages/count", self.sandbox_url))
            .await;
        v["sent"]
            .as_u64()
            .unwrap_or_else(|| panic!("/sandbox/messages/count without sent: {v}"))
    }

    /// Every message the sandbox received (it keeps them all: `--keep 0`).
    async fn sandbox_messages(&self) -> Vec<Value> {
        let v = self
            .get_json(&format!("{}/sandbox/messages", self.sandbox_url))
            .await;
        assert_eq!(v["dropped"]["sent"], 0, "the sandbox keeps every message");
        v["data"].as_array().cloned().expect("a data array")
    }

    async fn get_json(&self, url: &str) -> Value {
        let r = self.http.get(url).send().await.expect("reachable");
        let status = r.status();
        let body = r.text().await.expect("a body");
        assert_eq!(status, 200, "GET {url} answered {status}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// What the cluster looks like, for failure messages: `ringback cluster`, the outbox by
    /// state, the sandbox's count, and the last lines each process logged.
    async fn report(&self) -> String {
        let mut out = format!(
            "schema {} (left in place)\nringback cluster --json: {}\n",
            self.schema.name,
            self.cluster_json().await
        );
        let pool = self.schema.pool().await;
        let states: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM messages GROUP BY state ORDER BY state")
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        let unprocessed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbound_events WHERE processed_at IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap_or(-1);
        pool.close().await;
        out += &format!(
            "messages by state: {states:?}\nunprocessed events: {unprocessed}\nsandbox received: {}\n",
            self.sandbox_count().await
        );
        for (id, node) in &self.nodes {
            match node {
                Some(n) => out += &format!("--- {id} (last lines)\n{}\n", n.log_tail(15)),
                None => out += &format!("--- {id}: killed\n"),
            }
        }
        out += &format!("--- sandbox (last lines)\n{}\n", self.sandbox.log_tail(5));
        out
    }

    /// Stops every process, then drops the schema (only reached when the test passed).
    async fn finish(mut self) {
        self.nodes.clear();
        drop(self.sandbox);
        self.schema.remove().await;
    }
}

/// `(String, String)` pairs as [`serve`] takes them.
fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The holder of a live `leader` lease in `ringback cluster --json` output.
fn leader_in(v: &Value) -> Option<String> {
    let now = ringback::time::now_ms();
    v["leases"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == "leader" && l["expires_at"].as_i64().is_some_and(|t| t > now))
        .and_then(|l| l["holder"].as_str())
        .map(str::to_string)
}

/// A caller outside every burst.
const WARM_UP: &str = "+919877000000";

/// The caller of call `i`: distinct valid mobile numbers (`+91 98760 00000` onwards).
fn caller(i: usize) -> String {
    format!("+919876{:06}", i)
}

/// Plays a PBX: posts a missed call from each of `calls` distinct callers as a signed generic
/// call event, round-robin over `bases`, `concurrency` at a time, and at most `per_second` (a
/// PBX passes calls on as they come, not all at once). A request whose node does not answer
/// (it was killed) goes to the next node with the same call id, as a PBX retries; `acked`
/// counts the calls acknowledged so far. Returns how many calls had to be posted again.
async fn post_missed_calls(
    http: reqwest::Client,
    bases: Vec<String>,
    calls: usize,
    concurrency: usize,
    per_second: Option<u32>,
    acked: Arc<AtomicUsize>,
) -> usize {
    let start = tokio::time::Instant::now();
    let reposted = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, bases, next, acked) = (http.clone(), bases.clone(), next.clone(), acked.clone());
        let reposted = reposted.clone();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return;
                }
                if let Some(rate) = per_second {
                    // The PBX's arrival schedule (call i is due i/rate after the start), not a
                    // wait for something to happen: what the test waits for, it waits on with
                    // `wait_for` and a deadline. The schedule keeps the burst going while the
                    // leader is killed, so requests are in flight to it.
                    let due = Duration::from_secs_f64(i as f64 / f64::from(rate));
                    tokio::time::sleep_until(start + due).await;
                }
                let body = json!({"call_id": format!("burst-{i}"), "from": caller(i), "to": BUSINESS, "status": "no-answer"});
                let mut tried = Vec::new();
                for attempt in 0..3 * bases.len() {
                    let base = &bases[(i + attempt) % bases.len()];
                    match post_call(&http, base, &body).await {
                        Ok(r) if r.status().is_success() => {
                            acked.fetch_add(1, Ordering::Relaxed);
                            if attempt > 0 {
                                reposted.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        Ok(r) if r.status().is_client_error() => {
                            panic!("call {i} refused by {base}: {}", r.status())
                        }
                        Ok(r) => tried.push(format!("{base}: {}", r.status())),
                        Err(e) => tried.push(format!("{base}: {e}")),
                    }
                    assert!(
                        attempt + 1 < 3 * bases.len(),
                        "call {i} was acknowledged by no node: {tried:?}"
                    );
                }
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    reposted.load(Ordering::Relaxed)
}

/// How many messages each recipient got, and the callers among `0..calls` that did not get
/// exactly one.
fn per_recipient(sent: &[Value], calls: usize) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut count = BTreeMap::new();
    for m in sent {
        let to = m["to"].as_str().expect("a recipient").to_string();
        *count.entry(to).or_insert(0) += 1;
    }
    let wrong = (0..calls)
        .map(|i| caller(i)[1..].to_string())
        .filter(|to| count.get(to) != Some(&1))
        .map(|to| format!("{to}×{}", count.get(&to).unwrap_or(&0)))
        .collect();
    (count, wrong)
}

/// Settings of a cluster that sends fast and gives up on a dead node's sends soon.
const FAST: &[(&str, &str)] = &[
    // The per-row send lease is 3 request timeouts, at least 5 s: 5 s here. (A request that
    // times out waits `uncertain` for its status, up to 1 s here, before it is sent again:
    // the sandbox's first answer takes a while in a debug build.)
    ("RINGBACK_WHATSAPP__REQUEST_TIMEOUT_MS", "1600"),
    ("RINGBACK_OUTBOX__UNCERTAIN_RESEND_AFTER_SECONDS", "1"),
    ("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", "1000"),
];

/// Three nodes: A alone first, so that it leads, then B and C together. C listens on
/// `c_port` (the sandbox's webhooks go there) and is never the leader at the start.
async fn three_nodes(cluster: &mut Cluster, c_port: u16, settings: &[(&str, &str)]) {
    cluster.start("node-a", settings).await;
    cluster
        .wait_for(Duration::from_secs(15), "node-a leads", || async {
            (cluster.leader().await.as_deref() == Some("node-a")).then_some(())
        })
        .await;
    let c_listen = format!("127.0.0.1:{c_port}");
    let c: Vec<(&str, &str)> =
        [settings, &[("RINGBACK_SERVER__LISTEN", c_listen.as_str())]].concat();
    cluster
        .start_two(("node-b", settings), ("node-c", &c))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_lose_one_mid_burst_and_every_caller_gets_exactly_one_reply() {
    const CALLS: usize = 2000;
    let _alone = THREE_NODES.lock().await;
    let started = Instant::now();
    let c_port = free_port();
    let mut cluster = Cluster::new(c_port, &[]).await;
    three_nodes(&mut cluster, c_port, FAST).await;
    // Each request takes 300 ms to answer, so the leader dies with some in flight.
    let r = cluster
        .http
        .post(format!("{}/sandbox/faults", cluster.sandbox_url))
        .json(&json!({"phone_number_id": PNID, "latency_ms": 300}))
        .send()
        .await
        .expect("sandbox reachable");
    assert!(r.status().is_success(), "faults answered {}", r.status());
    // One call first, from a caller outside the burst: the sandbox's and the client's first
    // answer is slow in a debug build, and a request that times out and whose status does
    // not come within 1 s is sent again (a duplicate this test is not about).
    let warm_up =
        json!({"call_id": "warm-up", "from": WARM_UP, "to": BUSINESS, "status": "no-answer"});
    let r = post_call(&cluster.http, &cluster.node("node-b").base, &warm_up).await;
    assert!(r.expect("node-b answers").status().is_success());
    cluster
        .wait_for(Duration::from_secs(20), "the warm-up reply", || async {
            (cluster.sandbox_count().await >= 1).then_some(())
        })
        .await;

    let acked = Arc::new(AtomicUsize::new(0));
    let pbx = tokio::spawn(post_missed_calls(
        cluster.http.clone(),
        cluster.bases(),
        CALLS,
        8,
        Some(200),
        acked.clone(),
    ));
    // Mid-burst: a third of the calls in, and the leader with requests in flight. Both are
    // read in one query and the kill follows at once, before those requests can finish.
    let pool = cluster.schema.pool().await;
    let leader: String = cluster
        .wait_for(
            Duration::from_secs(60),
            "a third of the calls acknowledged, with sends in flight",
            || async {
                if acked.load(Ordering::Relaxed) < CALLS / 3 {
                    return None;
                }
                sqlx::query_scalar(
                    "SELECT holder FROM leases WHERE name = 'leader' AND expires_at > $1
                       AND EXISTS (SELECT 1 FROM attempts WHERE outcome = 'in_flight')",
                )
                .bind(ringback::time::now_ms())
                .fetch_optional(&pool)
                .await
                .ok()?
            },
        )
        .await;
    assert_ne!(
        leader, "node-c",
        "the webhook node must not be the one killed"
    );
    cluster.kill(&leader);
    let at_kill = (acked.load(Ordering::Relaxed), cluster.sandbox_count().await);
    let killed_at = Instant::now();
    let reposted = pbx.await.expect("every call is acknowledged by some node");

    // Every caller has a message at the sandbox, nothing is left to send, and every attempt
    // the killed node had open is closed. The last can come later than the rest: a request it
    // had in flight may be settled by the sandbox's status webhooks before its send lease
    // lapses, and only then is its attempt marked `interrupted` by the new leader.
    cluster
        .wait_for(
            Duration::from_secs(120),
            "a message for every caller, nothing left queued, sending or uncertain, no attempt open",
            || async {
                if cluster.sandbox_count().await < CALLS as u64 + 1 {
                    return None;
                }
                let open: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM messages WHERE state IN ('queued', 'sending', 'uncertain'))
                          + (SELECT COUNT(*) FROM attempts WHERE outcome IN ('claimed', 'in_flight'))",
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                (open == 0).then_some(())
            },
        )
        .await;
    let sent = cluster.sandbox_messages().await;
    let (count, wrong) = per_recipient(&sent, CALLS);
    if !wrong.is_empty() || count.len() != CALLS + 1 {
        panic!(
            "{} callers did not get exactly one reply ({} requests to {} recipients): {:?}\n{}",
            wrong.len(),
            sent.len(),
            count.len(),
            &wrong[..wrong.len().min(20)],
            cluster.report().await
        );
    }

    // Another node leads, and took over what the killed one had claimed.
    let v = cluster.cluster_json().await;
    let new_leader = leader_in(&v);
    assert!(
        new_leader.is_some() && new_leader.as_deref() != Some(leader.as_str()),
        "{leader} was killed, yet the leader is {new_leader:?}: {v}"
    );
    assert_eq!(
        v["lanes"],
        json!([]),
        "nothing queued, sending or uncertain: {v}"
    );
    // Every attempt it had claimed or started was closed: requeued, or `interrupted` (and its
    // message then settled by a status webhook or sent again).
    let (open, interrupted): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE outcome IN ('claimed', 'in_flight')),
                COUNT(*) FILTER (WHERE outcome = 'interrupted')
         FROM attempts",
    )
    .fetch_one(&pool)
    .await
    .expect("the attempts are readable");
    assert_eq!(
        open,
        0,
        "no attempt is left claimed or in flight\n{}",
        cluster.report().await
    );
    assert!(
        interrupted > 0,
        "the kill caught no request in flight, so nothing was taken over: the test proved \
         nothing\n{}",
        cluster.report().await
    );
    pool.close().await;
    eprintln!(
        "cluster: {CALLS} calls; killed {leader} at {} acknowledged, {} sent; {reposted} calls \
         posted again to another node; {interrupted} in-flight attempts taken over; settled \
         {:.1?} after the kill, {:.1?} in all",
        at_kill.0,
        at_kill.1,
        killed_at.elapsed(),
        started.elapsed()
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pacing_is_one_budget_across_three_nodes() {
    // 40/s for 25 s: the property is one budget shared by three nodes, which a third of it
    // (133/s each) or three times it would show at any rate; a lower rate leaves the debug-build
    // leader on a loaded 2-core CI machine the CPU to hold it (at 80/s it once fell 6 % short).
    const CALLS: usize = 1000;
    const RATE: u64 = 40;
    let _alone = THREE_NODES.lock().await;
    let started = Instant::now();
    let c_port = free_port();
    // Status webhooks come after the run: the leader only sends meanwhile, and the
    // measurement is of pacing, not of how the leader copes with processing on top.
    let mut cluster =
        Cluster::new(c_port, &[("RINGBACK_SANDBOX__STATUS_DELAY_MS", "600000")]).await;
    let rate = RATE.to_string();
    let settings: &[(&str, &str)] = &[("RINGBACK_OUTBOX__THROUGHPUT_PER_SECOND", &rate)];
    three_nodes(&mut cluster, c_port, settings).await;

    // All calls arrive within a few seconds, at every node: 25 s of sending queues up, and the
    // first seconds (the leader still deciding while calls pour in) are not measured.
    post_missed_calls(
        cluster.http.clone(),
        cluster.bases(),
        CALLS,
        12,
        None,
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    cluster
        .wait_for(
            Duration::from_secs(60),
            "the sandbox received a message per caller",
            || async { (cluster.sandbox_count().await >= CALLS as u64).then_some(()) },
        )
        .await;
    let sent = cluster.sandbox_messages().await;
    let (_, wrong) = per_recipient(&sent, CALLS);
    assert!(wrong.is_empty(), "one reply per caller: {wrong:?}");

    // Arrival times at the sandbox. The middle 10 s of the run (the queue is full there) are
    // reported; the assertion is on every 10 s window: none holds more than one budget (three
    // nodes do not send 80/s each), and the busiest holds all of it (the budget is not split
    // between nodes). On a shared 2-core machine the leader can be starved of CPU for a moment
    // and lose a few slots (pacing never makes up more than a fortieth of a second), so the
    // middle window alone measured 786-800 under the full suite while the busiest stayed in.
    let mut at: Vec<i64> = sent
        .iter()
        .map(|m| m["received_us"].as_i64().expect("arrival time in µs"))
        .collect();
    at.sort();
    const WINDOW: i64 = 10_000_000;
    let (first, last) = (at[0], at[at.len() - 1]);
    let from = (first + last) / 2 - WINDOW / 2;
    let middle = at
        .iter()
        .filter(|&&t| t >= from && t < from + WINDOW)
        .count();
    // The busiest window starts at some arrival: count from each one.
    let mut end = 0;
    let busiest = (0..at.len())
        .map(|i| {
            while end < at.len() && at[end] < at[i] + WINDOW {
                end += 1;
            }
            end - i
        })
        .max()
        .unwrap_or(0) as u64;
    let per_second: Vec<usize> = (0..=(last - first) / 1_000_000)
        .map(|s| {
            let start = first + s * 1_000_000;
            at.iter()
                .filter(|&&t| t >= start && t < start + 1_000_000)
                .count()
        })
        .collect();
    // Over the budget is what three nodes sending on their own would do (three times it): never
    // allowed beyond measurement. Under it is a debug-build leader starved of CPU on a loaded
    // 2-core machine (one-second dips while it is descheduled; pacing never makes up more than
    // a fortieth of a second); 10 % under still proves the budget is not split between nodes
    // (a third of it would be 33 % of it). Holding the rate exactly is the single-node test's
    // job (pacing::throughput_is_paced_so_the_sandbox_never_answers_130429).
    //
    // Over: the arrival times are the sandbox's, so requests paced on time but sent late by a
    // descheduled leader arrive together after the stall, and a window that starts just before
    // them holds them plus a full 10 s of on-time sends (1.5 % over seen once in five loaded
    // runs, every second on the rate). So the sliding window may be 3 % over; the middle 10 s,
    // 2 %.
    let want = RATE * 10;
    assert!(
        middle <= (want + 2 * want / 100) as usize,
        "the middle 10 s held {middle} requests at {RATE}/s (want at most {want} + 2 %); per \
         second from the first: {per_second:?}"
    );
    assert!(
        (want - 10 * want / 100..=want + 3 * want / 100).contains(&busiest),
        "the busiest 10 s held {busiest} requests at {RATE}/s (want {want} + 3 % / - 10 %; the \
         middle 10 s held {middle}); per second from the first: {per_second:?}\n{}",
        cluster.report().await
    );
    eprintln!(
        "cluster pacing: {middle} requests in the middle 10 s, {busiest} in the busiest; run \
         {:.1} s; per second {per_second:?}; {:.1?} in all",
        (last - first) as f64 / 1e6,
        started.elapsed()
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_starting_together_on_an_empty_database_migrate_once() {
    let mut cluster = Cluster::new(free_port(), &[]).await;
    cluster.start_two(("node-a", &[]), ("node-b", &[])).await;
    for id in ["node-a", "node-b"] {
        let node = cluster.node(id);
        let health = node.get_json(&format!("{}/healthz", node.base)).await;
        assert_eq!(health["status"], "ok", "{id}: {health}");
        assert_eq!(health["node"], id);
    }
    let pool = cluster.schema.pool().await;
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("_sqlx_migrations is readable");
    pool.close().await;
    let embedded: Vec<(i64, bool)> = ringback::store::postgres::connect::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, true))
        .collect();
    assert_eq!(
        applied, embedded,
        "each migration applied exactly once, successfully"
    );
    cluster.finish().await;
}
