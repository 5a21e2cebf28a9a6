use super::*;

fn cfg() -> ReplySettings {
    ReplySettings {
        builtin: true,
        template: "missed_call_followup".into(),
        language: "en_US".into(),
        template_params: vec![
            "{caller_name}".into(),
            "{business_name}".into(),
            "{call_time}".into(),
        ],
        text: "Hi {caller_name}, sorry we missed you at {business_name}.".into(),
        buttons: vec!["Call me back".into()],
        unknown_caller_name: "there".into(),
        after_hours_template: "".into(),
        after_hours_text: "We're closed, {caller_name}.".into(),
    }
}

fn input<'a>(caller: &'a PhoneE164, last_inbound_at: Option<Millis>) -> ReplyInput<'a> {
    ReplyInput {
        message_id: "msg_1",
        caller,
        caller_name: None,
        business_name: "Demo Bakery",
        last_inbound_at,
        call_at: 1_700_000_000_000,
        now: 1_700_000_000_000,
    }
}

#[test]
fn closed_window_sends_the_template_with_filled_variables() {
    let caller = PhoneE164::parse_international("+919876543210").unwrap();
    let p = plan(&input(&caller, None), &cfg(), None, &TimeZone::UTC);
    assert_eq!(p.kind, "template");
    assert_eq!(p.body["template"]["name"], "missed_call_followup");
    let params = &p.body["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "there");
    assert_eq!(params[1]["text"], "Demo Bakery");
    assert_eq!(params[2]["text"], "22:13 on Tue 14 Nov");
    assert_eq!(p.body["biz_opaque_callback_data"], "msg_1");
    assert!(p.reason.contains("window closed"));
}

#[test]
fn open_window_sends_free_form_with_buttons() {
    let caller = PhoneE164::parse_international("+919876543210").unwrap();
    let mut i = input(&caller, Some(1_700_000_000_000 - 3_600_000));
    i.caller_name = Some("Asha");
    let p = plan(&i, &cfg(), None, &TimeZone::UTC);
    assert_eq!(p.kind, "interactive");
    assert_eq!(
        p.body["interactive"]["body"]["text"],
        "Hi Asha, sorry we missed you at Demo Bakery."
    );
    assert_eq!(
        p.body["interactive"]["action"]["buttons"][0]["reply"]["title"],
        "Call me back"
    );
    assert!(p.reason.contains("window open"), "{}", p.reason);
}

#[test]
fn a_refusal_caused_by_the_event_blames_the_event_not_the_configuration() {
    let caller = PhoneE164::parse_international("+919876543210").unwrap();
    let refusal = crate::cloud_api::rules::Refusal::new(
        132000,
        "Number of parameters does not match the expected number of params",
        "body: number of localizable_params (2) does not match the expected number of params (3)",
    );
    // A PBX timestamp in milliseconds, taken as seconds: a date no calendar shows.
    let mut bad = input(&caller, None);
    bad.call_at = 1_767_225_600_000 * 1000;
    let p = plan(&bad, &cfg(), None, &TimeZone::UTC);
    assert_eq!(
        p.body["template"]["components"][0]["parameters"][2]["text"],
        ""
    );
    let why = refusal_reason("missed call", &refusal, &bad);
    assert!(
        why.contains("could not be filled from the call event"),
        "{why}"
    );
    assert!(why.contains("not the configuration"), "{why}");
    assert!(!why.contains("fix [missed_call.reply]"), "{why}");

    // The same refusal with a sound event is the configuration's.
    let why = refusal_reason("missed call", &refusal, &input(&caller, None));
    assert!(why.contains("fix [missed_call.reply]"), "{why}");
}
