use super::*;

fn cfg() -> ReplySettings {
    ReplySettings {
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
