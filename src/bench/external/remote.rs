//! A standalone Cloud API sandbox (`ringback sandbox --keep 0`) read over HTTP: how many
//! replies it received (`GET /sandbox/messages/count`), each reply's recipient and receive
//! time (`GET /sandbox/messages`), and the status webhooks it still has to post
//! (`GET /sandbox/webhooks`).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use crate::bench::timeline::SentCount;

/// `GET /sandbox/messages/count`.
#[derive(Debug, Deserialize)]
struct Count {
    /// Every send, the ones no longer kept included.
    sent: usize,
}

/// One record of `GET /sandbox/messages` ([`crate::sandbox::SentMessage`]): only what the
/// bench matches on.
#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    /// The recipient's digits.
    pub to: String,
    /// When the sandbox received the send, microseconds since the epoch.
    pub received_us: i64,
}

/// `GET /sandbox/messages`.
#[derive(Debug, Deserialize)]
struct Replies {
    data: Vec<Reply>,
    dropped: Dropped,
}

#[derive(Debug, Deserialize)]
struct Dropped {
    sent: u64,
}

/// `GET /sandbox/webhooks`.
#[derive(Debug, Deserialize)]
struct Webhooks {
    /// Status webhooks waiting to be posted (or re-posted) to the server.
    pending: u64,
}

#[derive(Clone)]
pub struct SandboxClient {
    http: reqwest::Client,
    base: String,
}

impl SandboxClient {
    /// `base` is the sandbox's `http://host:port`.
    pub fn new(base: &str) -> anyhow::Result<SandboxClient> {
        Ok(SandboxClient {
            // A client of its own: the counts are read while the burst fills the posting
            // client's connections to the server.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .context("building the sandbox's HTTP client")?,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("reading {url}: is `ringback sandbox` running there?"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        response
            .json()
            .await
            .with_context(|| format!("{url} did not answer the sandbox's JSON"))
    }

    /// Replies received so far, dropped ones included.
    pub async fn sent(&self) -> anyhow::Result<usize> {
        Ok(self.get::<Count>("/sandbox/messages/count").await?.sent)
    }

    /// Every reply the sandbox received, oldest first. Latencies need all of the burst's: a
    /// sandbox that dropped some (it keeps `--keep` records, 10,000 by default) is an error
    /// that says so.
    pub async fn replies(&self) -> anyhow::Result<Vec<Reply>> {
        let replies: Replies = self.get("/sandbox/messages").await?;
        anyhow::ensure!(
            replies.dropped.sent == 0,
            "the sandbox dropped {} of its oldest replies, so latencies cannot be matched: start it with `ringback sandbox --keep 0`",
            replies.dropped.sent
        );
        Ok(replies.data)
    }

    /// Status webhooks still waiting to be posted to the server.
    pub async fn webhooks_pending(&self) -> anyhow::Result<u64> {
        Ok(self.get::<Webhooks>("/sandbox/webhooks").await?.pending)
    }

    /// Waits until the sandbox has received `total` replies. Fails when it takes longer than
    /// `limit`, or when the count stays still for `stall` (a server whose sends are refused —
    /// another access token than the sandbox's — never gets there, and should not take ten
    /// minutes to say so).
    pub async fn wait_for_sent(
        &self,
        total: usize,
        limit: Duration,
        stall: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let (mut last, mut moved) = (self.sent().await?, Instant::now());
        while last < total {
            anyhow::ensure!(
                started.elapsed() < limit,
                "only {last} of {total} replies reached the sandbox in {limit:?}"
            );
            anyhow::ensure!(
                moved.elapsed() < stall,
                "the sandbox's count stayed at {last} of {total} for {stall:?}: does the server send to it, with the token it expects? (see the server's log)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.sent().await?;
            if now > last {
                (last, moved) = (now, Instant::now());
            }
        }
        Ok(())
    }

    /// Waits until the sandbox has posted every status webhook it owes the server, so the next
    /// run does not measure the server handling this one's.
    pub async fn wait_for_webhooks(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let pending = self.webhooks_pending().await?;
            if pending == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the sandbox still had {pending} status webhooks to post after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl SentCount for SandboxClient {
    fn count_sent(&self) -> impl Future<Output = anyhow::Result<usize>> + Send {
        self.sent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Sandbox, SandboxNumber, SandboxSettings};

    /// A real sandbox on a loopback port, as `ringback sandbox --keep 0` serves it, without
    /// a webhook receiver.
    async fn sandbox(keep: usize) -> (String, crate::shutdown::Trigger) {
        let (trigger, shutdown) = crate::shutdown::channel();
        let number = SandboxNumber {
            phone_number_id: "100000000000001".into(),
            waba_id: "200000000000001".into(),
            display_number: "15550100001".into(),
            access_token: "t".to_string().into(),
        };
        let mut settings = SandboxSettings::demo(vec![number], None, "s".to_string().into());
        settings.limits.enabled = false;
        settings.keep = keep;
        let sb = Sandbox::start(settings, shutdown.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(sb.serve(listener, shutdown));
        (base, trigger)
    }

    async fn send(base: &str, to: &str) {
        let body = format!(
            r#"{{"messaging_product":"whatsapp","to":"+{to}","type":"template","template":{{"name":"hello_world","language":{{"code":"en_US"}}}}}}"#
        );
        let r = reqwest::Client::new()
            .post(format!("{base}/v23.0/100000000000001/messages"))
            .header("authorization", "Bearer t")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }

    #[tokio::test]
    async fn counts_and_replies_are_read_from_a_running_sandbox() {
        let (base, stop) = sandbox(0).await;
        let client = SandboxClient::new(&format!("{base}/")).unwrap();
        assert_eq!(client.sent().await.unwrap(), 0);
        let before = jiff::Timestamp::now().as_microsecond();
        send(&base, "919800000007").await;
        send(&base, "919800000008").await;
        assert_eq!(client.count_sent().await.unwrap(), 2);
        client
            .wait_for_sent(2, Duration::from_secs(5), Duration::from_secs(5))
            .await
            .unwrap();
        let replies = client.replies().await.unwrap();
        let to: Vec<&str> = replies.iter().map(|r| r.to.as_str()).collect();
        assert_eq!(to, ["919800000007", "919800000008"]);
        assert!(replies.iter().all(|r| r.received_us >= before));
        // No webhook URL: nothing waits to be posted.
        client
            .wait_for_webhooks(Duration::from_secs(5))
            .await
            .unwrap();
        stop.fire();
    }

    #[tokio::test]
    async fn a_sandbox_that_dropped_replies_or_stays_still_is_an_error_that_says_why() {
        let (base, stop) = sandbox(1).await;
        let client = SandboxClient::new(&base).unwrap();
        send(&base, "919800000001").await;
        send(&base, "919800000002").await;
        let dropped = client.replies().await.unwrap_err().to_string();
        assert!(dropped.contains("--keep 0"), "{dropped}");
        let stalled = client
            .wait_for_sent(3, Duration::from_secs(5), Duration::from_millis(100))
            .await
            .unwrap_err()
            .to_string();
        assert!(stalled.contains("stayed at 2 of 3"), "{stalled}");
        stop.fire();
        let gone = SandboxClient::new("http://127.0.0.1:9").unwrap();
        assert!(gone.sent().await.is_err());
    }
}
