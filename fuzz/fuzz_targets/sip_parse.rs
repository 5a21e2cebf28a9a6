//! Arbitrary bytes into the SIP parser (datagram and stream framing), the 400-salvager and
//! the UAS (as a UDP and as a TCP message, with timers run to the end): nothing may panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ringback::telephony::sip::message;
use ringback::telephony::sip::transaction::Timers;
use ringback::telephony::sip::uas::{Now, Uas, UasSettings};

fuzz_target!(|data: &[u8]| {
    let _ = message::parse_stream(data);
    let _ = message::salvage(data);
    let mut uas: Uas<()> = Uas::new(UasSettings {
        ring: Duration::from_secs(1),
        final_code: 480,
        number: None,
        trusted_peers: Vec::new(),
        accept_from: Vec::new(),
        timers: Timers::default(),
    });
    let t0 = Instant::now();
    let now = |ms: u64| Now {
        at: t0 + Duration::from_millis(ms),
        ms: ms as i64,
    };
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut out = Vec::new();
    // The same bytes twice (a retransmission), once per transport.
    uas.on_bytes(data, (), ip, false, now(0), &mut out);
    uas.on_bytes(data, (), ip, false, now(10), &mut out);
    if let Ok(msg) = message::parse(data) {
        uas.on_message(msg, data, (), ip, true, now(20), &mut out);
    }
    let mut ms = 0;
    while let Some(at) = uas.next_deadline() {
        ms = ms.max(at.saturating_duration_since(t0).as_millis() as u64);
        uas.on_tick(now(ms), &mut out);
    }
    assert!(uas.is_empty());
});
