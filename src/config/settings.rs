//! [`Settings`]: the validated, typed configuration.

use std::net::SocketAddr;
use std::time::Duration;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError, LogConfig, parse_listen, parse_number, parse_region};
use crate::phone::{PhoneE164, Region};

/// Everything Ringback needs to run, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `https://host[:port]` as providers see us; `None` = rebuild from `Host`.
    pub public_base_url: Option<String>,
    pub max_body_bytes: usize,
    pub api_token: Option<SecretString>,
    /// Slow-client limits of the HTTP listeners (server.header_read_timeout_seconds,
    /// server.idle_timeout_seconds).
    pub http_timeouts: super::http::Timeouts,
    pub store_url: String,
    /// The SIP/PBX call spool file ([`super::telephony::spool_path`]).
    pub call_spool: std::path::PathBuf,
    /// `None` = use the embedded sandbox.
    pub api_base: Option<String>,
    pub api_version: String,
    pub request_timeout: Duration,
    pub template_sync_seconds: u64,
    pub app_secret: SecretString,
    pub verify_token: SecretString,
    pub senders: Vec<Sender>,
    pub default_region: Region,
    pub ring_timeout_seconds: u32,
    pub cooldown_ms: i64,
    pub reply: super::reply::ReplySettings,
    pub business_hours: Option<BusinessHours>,
    /// `TimeZone` used to render `{call_time}`.
    pub timezone: TimeZone,
    pub twilio_auth_token: Option<SecretString>,
    pub twilio_forward_to: Option<PhoneE164>,
    pub twilio_dial_timeout: u32,
    pub calls_secret: SecretString,
    pub calling: super::calling::CallingConfig,
    pub sip: super::telephony::SipConfig,
    pub asterisk: super::telephony::AsteriskConfig,
    pub freeswitch: super::telephony::FreeswitchConfig,
    pub outbox: super::OutboxConfig,
    pub sandbox_listen: Option<SocketAddr>,
    pub sandbox: super::SandboxConfig,
    pub log: LogConfig,
    pub consent: super::ConsentConfig,
    /// Declared templates, one per (WABA, name, language).
    pub templates: Vec<crate::cloud_api::template::Template>,
    pub demo_secrets: bool,
    /// How long each kind of row is kept, and how the retention worker runs.
    pub retention: super::retention::RetentionSettings,
    /// This node's name and the leader lease ([`super::cluster`]).
    pub cluster: super::cluster::ClusterSettings,
    /// `[conversations] inactivity_minutes`, in milliseconds.
    pub conversation_inactivity: i64,
    pub outbound_webhooks: super::events::OutboundWebhookSettings,
    pub flows: super::flows::FlowSettings,
    /// The web console (`[console]`).
    pub console: super::console::ConsoleSettings,
    /// `[[assistants]]`, validated (knowledge files read, provider keys found).
    pub assistants: Vec<super::assistants::AssistantSettings>,
    /// The configuration as loaded, secrets redacted (for the console's Settings page).
    pub effective_toml: String,
}

/// One WhatsApp business number.
#[derive(Debug, Clone)]
pub struct Sender {
    pub phone_number_id: String,
    pub waba_id: String,
    pub display_number: PhoneE164,
    pub access_token: SecretString,
    pub business_name: String,
    pub lines: Vec<PhoneE164>,
    /// This number's conversation inactivity period, if it has its own.
    pub conversation_inactivity: Option<i64>,
}

impl Settings {
    /// How long a conversation on `sender_id` may be quiet before it ends.
    pub fn conversation_inactivity(&self, sender_id: &str) -> i64 {
        self.senders
            .iter()
            .find(|s| s.phone_number_id == sender_id)
            .and_then(|s| s.conversation_inactivity)
            .unwrap_or(self.conversation_inactivity)
    }

    /// The sender named by its phone_number_id, or the first one when none is named; the
    /// error says what was wrong.
    pub fn sender(&self, phone_number_id: Option<&str>) -> Result<&Sender, String> {
        match phone_number_id {
            Some(id) => self
                .senders
                .iter()
                .find(|x| x.phone_number_id == id)
                .ok_or_else(|| format!("'{id}' is not the phone_number_id of any [[senders]]")),
            None => Ok(&self.senders[0]),
        }
    }
}

/// Opening hours in the business's time zone.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    pub timezone: TimeZone,
    /// Monday first; `None` = closed all day.
    pub days: [Option<(Time, Time)>; 7],
}

impl BusinessHours {
    /// Is the business open at `ms` (unix milliseconds)?
    pub fn is_open(&self, ms: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
            return true;
        };
        let local = ts.to_zoned(self.timezone.clone());
        let idx = local.weekday().to_monday_zero_offset() as usize;
        match self.days[idx] {
            Some((open, close)) => {
                let t = local.time();
                t >= open && t < close
            }
            None => false,
        }
    }
}

pub(super) fn build(c: &Config) -> Result<Settings, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(m);
    if c.senders.is_empty() {
        return Err(invalid("at least one [[senders]] entry is needed".into()));
    }
    c.calling.validate().map_err(invalid)?;
    let mut senders = Vec::with_capacity(c.senders.len());
    for (i, s) in c.senders.iter().enumerate() {
        if s.phone_number_id.trim().is_empty()
            || !s.phone_number_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(format!(
                "senders[{i}].phone_number_id = '{}' must be the numeric id from WhatsApp Manager",
                s.phone_number_id
            )));
        }
        if s.access_token.expose_secret().is_empty() {
            return Err(invalid(format!(
                "senders[{i}].access_token is empty; set RINGBACK_SENDERS__{i}__ACCESS_TOKEN"
            )));
        }
        let lines = s
            .lines
            .iter()
            .map(|l| parse_number(&format!("senders[{i}].lines"), l))
            .collect::<Result<Vec<_>, _>>()?;
        senders.push(Sender {
            phone_number_id: s.phone_number_id.clone(),
            waba_id: s.waba_id.clone(),
            display_number: parse_number(
                &format!("senders[{i}].display_number"),
                &s.display_number,
            )?,
            access_token: s.access_token.clone(),
            business_name: s.business_name.clone(),
            lines,
            conversation_inactivity: s
                .conversation_inactivity_minutes
                .map(|m| {
                    super::events::inactivity_ms(
                        &format!("senders[{i}].conversation_inactivity_minutes"),
                        m,
                    )
                })
                .transpose()
                .map_err(invalid)?,
        });
    }
    let mut ids: Vec<_> = senders.iter().map(|s| &s.phone_number_id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != senders.len() {
        return Err(invalid("two [[senders]] share a phone_number_id".into()));
    }

    let reply = super::reply::build(&c.missed_call.reply, &c.missed_call.business_hours)?;

    let bh = &c.missed_call.business_hours;
    let timezone = TimeZone::get(&bh.timezone).map_err(|e| {
        invalid(format!("missed_call.business_hours.timezone = '{}' is not an IANA zone such as Asia/Kolkata: {e}", bh.timezone))
    })?;
    let business_hours = if bh.enabled {
        let spec = [
            &bh.monday,
            &bh.tuesday,
            &bh.wednesday,
            &bh.thursday,
            &bh.friday,
            &bh.saturday,
            &bh.sunday,
        ];
        let mut days = [None; 7];
        for (i, (day, s)) in DAY_NAMES.iter().zip(spec).enumerate() {
            days[i] = parse_hours(s)
                .map_err(|m| invalid(format!("missed_call.business_hours.{day}: {m}")))?;
        }
        Some(BusinessHours {
            timezone: timezone.clone(),
            days,
        })
    } else {
        None
    };

    let listen = parse_listen("server.listen", &c.server.listen)?;
    let api_token = Some(c.server.api_token.clone()).filter(|t| !t.expose_secret().is_empty());
    if api_token.is_none() && !listen.ip().is_loopback() {
        return Err(invalid(format!(
            "server.listen = {listen} is reachable from other machines but server.api_token is empty; set RINGBACK_SERVER__API_TOKEN"
        )));
    }
    let api_base = Some(c.whatsapp.api_base.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty());
    let sandbox_listen = if c.sandbox.enabled {
        Some(parse_listen("sandbox.listen", &c.sandbox.listen)?)
    } else {
        None
    };
    if api_base.is_none() && sandbox_listen.is_none() {
        return Err(invalid(
            "whatsapp.api_base is empty and the sandbox is disabled: nothing to send through"
                .into(),
        ));
    }
    // The sandbox listens only when it is the WhatsApp endpoint.
    let started_sandbox = api_base.is_none().then_some(sandbox_listen).flatten();
    super::listeners::refuse_demo_secrets_when_exposed(c, listen, started_sandbox)?;
    let http_timeouts = super::http::timeouts(c)?;
    if c.outbox.retry_delays_ms.is_empty()
        || c.outbox.max_attempts == 0
        || c.outbox.concurrency == 0
    {
        return Err(invalid("outbox: retry_delays_ms needs a value, max_attempts and concurrency must be at least 1".into()));
    }
    if !["queue", "refuse"].contains(&c.outbox.when_sender_offline.as_str()) {
        return Err(invalid(format!(
            "outbox.when_sender_offline = \"{}\": use \"queue\" or \"refuse\"",
            c.outbox.when_sender_offline
        )));
    }
    let public_base_url = Some(
        c.server
            .public_base_url
            .trim()
            .trim_end_matches('/')
            .to_string(),
    )
    .filter(|s| !s.is_empty());
    if let Some(u) = &public_base_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(invalid(format!(
            "server.public_base_url = '{u}' must start with http:// or https://"
        )));
    }
    let twilio_forward_to = Some(c.twilio.forward_to.trim())
        .filter(|s| !s.is_empty())
        .map(|s| parse_number("twilio.forward_to", s))
        .transpose()?;

    c.asterisk.validate().map_err(invalid)?;
    c.freeswitch.validate().map_err(invalid)?;

    let templates = declared_templates(c, &senders)?;
    let assistants = super::assistants::settings(
        &c.assistants,
        &c.provider_keys,
        &senders,
        business_hours.as_ref(),
    )
    .map_err(invalid)?;
    Ok(Settings {
        templates,
        listen,
        public_base_url,
        max_body_bytes: c.server.max_body_bytes,
        api_token,
        http_timeouts,
        store_url: c.store.url.clone(),
        call_spool: super::telephony::spool_path(&c.store.url, &c.store.call_spool),
        api_base,
        api_version: c.whatsapp.api_version.clone(),
        request_timeout: Duration::from_millis(c.whatsapp.request_timeout_ms),
        template_sync_seconds: c.whatsapp.template_sync_seconds.max(10),
        app_secret: c.whatsapp.app_secret.clone(),
        verify_token: c.whatsapp.verify_token.clone(),
        senders,
        default_region: parse_region("missed_call.default_region", &c.missed_call.default_region)?,
        ring_timeout_seconds: c.missed_call.ring_timeout_seconds,
        cooldown_ms: i64::from(c.missed_call.cooldown_minutes) * 60_000,
        reply,
        business_hours,
        timezone,
        twilio_auth_token: Some(c.twilio.auth_token.clone())
            .filter(|t| !t.expose_secret().is_empty()),
        twilio_forward_to,
        twilio_dial_timeout: c.twilio.dial_timeout_seconds,
        calls_secret: c.calls.secret.clone(),
        calling: c.calling.clone(),
        sip: {
            c.sip.validate().map_err(ConfigError::Invalid)?;
            c.sip.clone()
        },
        asterisk: c.asterisk.clone(),
        freeswitch: c.freeswitch.clone(),
        outbox: c.outbox.clone(),
        sandbox_listen,
        sandbox: c.sandbox.clone(),
        log: c.log.clone(),
        consent: c.consent.clone(),
        demo_secrets: c.uses_demo_secrets(),
        retention: c
            .retention
            .settings(i64::from(c.missed_call.cooldown_minutes) * 60_000)
            .map_err(invalid)?,
        cluster: c.cluster.settings().map_err(invalid)?,
        conversation_inactivity: super::events::inactivity_ms(
            "conversations.inactivity_minutes",
            c.conversations.inactivity_minutes,
        )
        .map_err(invalid)?,
        outbound_webhooks: c.outbound_webhooks.settings().map_err(invalid)?,
        flows: c.flows.settings(&c.flow_env).map_err(invalid)?,
        console: c.console.settings(listen)?,
        effective_toml: c.effective_toml.clone(),
        assistants,
    })
}

/// `[[templates]]` expanded to every WABA they apply to.
fn declared_templates(
    c: &Config,
    senders: &[Sender],
) -> Result<Vec<crate::cloud_api::template::Template>, ConfigError> {
    let mut out = Vec::new();
    for (i, t) in c.templates.iter().enumerate() {
        let category = t.category.to_ascii_uppercase();
        if !["MARKETING", "UTILITY", "AUTHENTICATION"].contains(&category.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "templates[{i}].category = '{}' must be MARKETING, UTILITY or AUTHENTICATION",
                t.category
            )));
        }
        let mut wabas: Vec<&str> = if t.waba_id.is_empty() {
            senders.iter().map(|s| s.waba_id.as_str()).collect()
        } else {
            vec![t.waba_id.as_str()]
        };
        wabas.dedup();
        for waba in wabas {
            let mut tpl =
                crate::cloud_api::template::Template::simple(waba, 0, &t.name, &category, &t.body);
            tpl.id = format!("config-{i}");
            tpl.language = t.language.clone();
            out.push(tpl);
        }
    }
    Ok(out)
}

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `"09:00-18:00"` → open/close; `""` → closed.
fn parse_hours(s: &str) -> Result<Option<(Time, Time)>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("'{s}' should look like 09:00-18:00"))?;
    let parse = |t: &str| -> Result<Time, String> {
        let t = t.trim();
        let full = if t.len() == 5 {
            format!("{t}:00")
        } else {
            t.to_string()
        };
        full.parse::<Time>()
            .map_err(|_| format!("'{t}' is not a time like 09:00"))
    };
    let (open, close) = (parse(a)?, parse(b)?);
    if open >= close {
        return Err(format!("'{s}' closes before it opens"));
    }
    Ok(Some((open, close)))
}
