//! The interpreter on the three seed workflows, with a simulated clock: every branch taken,
//! actions asked for with their inputs rendered, waits and retries as due times.

use serde_json::{Value, json};

use super::definition::parse;
use super::engine::{Action, Engine, Failure, Next, Run, Status};
use super::render::Context;
use crate::time::Millis;

const MINUTE: Millis = 60_000;
/// 2026-12-02T09:00:00Z.
const T0: Millis = 1_796_202_000_000;

fn flow(text: &str) -> super::Flow {
    parse(text, "t").unwrap()
}

fn base() -> Context {
    Context::new(
        [
            ("flow", json!({"name": "t"})),
            ("run", json!({"id": "run_1"})),
        ],
        [
            ("RINGBACK_FLOW_CRM_TOKEN".to_string(), "crm-7".to_string()),
            (
                "RINGBACK_FLOW_CLINIC_TOKEN".to_string(),
                "clinic-3".to_string(),
            ),
            ("DATABASE_URL".to_string(), "secret".to_string()),
        ],
    )
}

fn engine<'a>(flow: &'a super::Flow, base: &'a Context) -> Engine<'a> {
    Engine {
        flow,
        base,
        zone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
    }
}

/// The step and error of a run that failed (a test failure otherwise).
fn failure(next: Next) -> (String, String) {
    match next {
        Next::Failed { step, error } => (step, error),
        other => panic!("the run was expected to fail: {other:?}"),
    }
}

/// A flow that passes the check, as every flow a runner runs does.
fn checked(text: &str) -> super::Flow {
    let f = flow(text);
    let problems = super::check_flow(&f, None);
    assert!(problems.is_empty(), "{problems:?}");
    f
}

fn act(next: Next) -> Action {
    match next {
        Next::Act(a) => a,
        other => panic!("an action was expected: {other:?}"),
    }
}

fn follow_up(talk_seconds: Option<u32>, outcome: &str) -> (Run, Vec<Action>) {
    let f = flow(include_str!(
        "../../examples/flows/post-call-follow-up.toml"
    ));
    let b = base();
    let e = engine(&f, &b);
    let trigger = json!({"call": {"outcome": outcome, "talk_seconds": talk_seconds, "missed": outcome != "answered"}});
    let mut run = Run::start(
        trigger,
        json!({"phone": "+919876543210", "name": "Asha"}),
        T0,
    );
    // Five minutes, as a due time: nothing happens before it.
    assert_eq!(
        e.advance(&mut run, T0),
        Next::Sleep {
            until: T0 + 5 * MINUTE
        }
    );
    assert_eq!(
        e.resume(&mut run, T0 + MINUTE),
        Next::Sleep {
            until: T0 + 5 * MINUTE
        }
    );
    let mut actions = Vec::new();
    let mut next = e.resume(&mut run, T0 + 5 * MINUTE);
    while let Next::Act(a) = next {
        actions.push(a);
        next = e.complete(&mut run, Ok(json!({"status": "sent"})), T0 + 5 * MINUTE);
    }
    assert_eq!(next, Next::Done);
    (run, actions)
}

#[test]
fn post_call_follow_up_takes_each_branch() {
    let (_, long) = follow_up(Some(90), "answered");
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].step, "interested");
    assert_eq!(
        long[0].input["template"],
        json!({"template": "call_interested", "language": "en_US", "variables": ["Asha", "https://example.com/prices"]})
    );
    assert_eq!(long[0].key, "1:interested#1");

    let (_, short) = follow_up(Some(20), "answered");
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].step, "follow_up");

    let (run, missed) = follow_up(None, "no-answer");
    assert!(missed.is_empty(), "{missed:?}");
    assert_eq!(run.steps["outcome"]["taken"], "end");
}

#[test]
fn lead_qualification_waits_for_the_reply_or_times_out() {
    let f = flow(include_str!("../../examples/flows/lead-qualification.toml"));
    let b = base();
    let e = engine(&f, &b);
    let start = || {
        Run::start(
            json!({"phone": "+919876543210", "name": "Ravi", "interest": "solar panels"}),
            json!({"phone": "+919876543210"}),
            T0,
        )
    };
    let mut run = start();
    let welcome = act(e.advance(&mut run, T0));
    assert_eq!(welcome.input["to"], "+919876543210");
    assert_eq!(
        welcome.input["template"]["variables"],
        json!(["Ravi", "solar panels"])
    );
    let day = 24 * 60 * MINUTE;
    assert_eq!(
        e.complete(&mut run, Ok(json!({"status": "sent"})), T0),
        Next::AwaitReply { until: T0 + day }
    );
    // The reply comes: the assistant reads it, the CRM hears "replied".
    let ask = act(e.reply(
        &mut run,
        json!({"text": "How much for 5 kW?", "type": "text"}),
        T0 + 30 * MINUTE,
    ));
    assert_eq!(ask.kind, "generate_reply");
    assert_eq!(ask.input["message"], "How much for 5 kW?");
    let crm = act(e.complete(
        &mut run,
        Ok(json!({"reply": "A 5 kW system is …"})),
        T0 + 31 * MINUTE,
    ));
    assert_eq!(crm.step, "qualified");
    assert_eq!(crm.input["headers"]["Authorization"], "Bearer crm-7");
    assert_eq!(crm.input["body"]["status"], "replied");
    assert_eq!(crm.input["body"]["assessment"], "A 5 kW system is …");
    assert_eq!(
        e.complete(&mut run, Ok(json!({"status": 201})), T0 + 31 * MINUTE),
        Next::Done
    );

    // No reply within the day: the timeout branch.
    let mut run = start();
    act(e.advance(&mut run, T0));
    e.complete(&mut run, Ok(json!({"status": "sent"})), T0);
    let crm = act(e.resume(&mut run, T0 + day));
    assert_eq!(crm.step, "no_reply");
    assert_eq!(crm.input["body"]["status"], "no_reply");
    assert_eq!(run.steps["reply"]["timed_out"], true);
}

#[test]
fn appointment_reminders_loop_over_the_list_and_log_failures_too() {
    let f = flow(include_str!(
        "../../examples/flows/appointment-reminders.toml"
    ));
    let b = base();
    let e = engine(&f, &b);
    let mut run = Run::start(json!({}), Value::Null, T0);
    let fetch = act(e.advance(&mut run, T0));
    assert_eq!(fetch.input["method"], "GET");
    assert_eq!(fetch.input["headers"]["Authorization"], "Bearer clinic-3");
    let appointments = json!({"status": 200, "body": {"appointments": [
        {"id": "a1", "phone": "+4915112345678", "name": "Jonas", "date": "3 Dec", "time": "10:00"},
        {"id": "a2", "phone": "+4915187654321", "name": "Mia", "date": "3 Dec", "time": "11:30"},
    ]}});
    let remind = act(e.complete(&mut run, Ok(appointments), T0));
    assert_eq!(remind.key, "2:each[0].remind#1");
    assert_eq!(remind.input["to"], "+4915112345678");
    assert_eq!(
        remind.input["template"]["variables"],
        json!({"name": "Jonas", "date": "3 Dec", "time": "10:00"})
    );
    let log = act(e.complete(
        &mut run,
        Ok(json!({"status": "sent", "message_id": "m1"})),
        T0,
    ));
    assert_eq!(log.key, "3:each[0].log#1");
    assert_eq!(
        log.input["body"],
        json!({"appointment": "a1", "status": "sent", "error": ""})
    );
    let second = act(e.complete(&mut run, Ok(json!({"status": 200})), T0));
    assert_eq!(second.key, "4:each[1].remind#1");
    // The second patient opted out: not retried, logged with the reason.
    let refused = Failure {
        code: "opted_out".into(),
        message: "the customer opted out of messages from this business".into(),
        retryable: false,
    };
    let log = act(e.complete(&mut run, Err(refused), T0));
    assert_eq!(log.key, "5:each[1].log#1");
    assert_eq!(run.steps["remind"]["error_code"], "opted_out");
    assert_eq!(log.input["body"]["status"], "failed");
    assert!(
        log.input["body"]["error"]
            .as_str()
            .unwrap()
            .contains("opted_out"),
        "{}",
        log.input["body"]
    );
    assert_eq!(
        e.complete(&mut run, Ok(json!({"status": 200})), T0),
        Next::Done
    );
    assert_eq!(run.steps["each"]["count"], 2);
}

#[test]
fn a_retryable_failure_waits_a_minute_tries_again_then_fails_the_run() {
    let f = flow(
        "[trigger]\non = \"manual\"\n[[steps]]\nid = \"hook\"\ntype = \"http\"\nurl = \"https://x.example/\"\n",
    );
    let b = base();
    let e = engine(&f, &b);
    let mut run = Run::start(json!({}), Value::Null, T0);
    let first = act(e.advance(&mut run, T0));
    assert_eq!(first.key, "1:hook#1");
    let busy = || Failure {
        code: "http_status".into(),
        message: "503 Service Unavailable".into(),
        retryable: true,
    };
    assert_eq!(
        e.complete(&mut run, Err(busy()), T0),
        Next::Sleep { until: T0 + MINUTE }
    );
    // The state survives a restart as data.
    let mut run: Run = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
    let second = act(e.resume(&mut run, T0 + MINUTE));
    assert_eq!(second.key, "1:hook#2");
    let end = e.complete(&mut run, Err(busy()), T0 + MINUTE);
    assert_eq!(
        end,
        Next::Failed {
            step: "hook".into(),
            error: "http_status: 503 Service Unavailable".into()
        }
    );
    assert!(matches!(run.status, Status::Failed { .. }));
}

#[test]
fn a_missing_variable_fails_the_step_with_its_name_and_sends_nothing() {
    let f = flow(
        "[trigger]\non = \"manual\"\n[[steps]]\nid = \"hi\"\ntype = \"send_text\"\n\
         text = \"Hi {{ contact.name }}, your order {{ trigger.order_id }} is ready\"\n",
    );
    let b = base();
    let e = engine(&f, &b);
    let mut run = Run::start(
        json!({"order_id": "A-17"}),
        json!({"phone": "+4915112345678"}),
        T0,
    );
    let (step, error) = failure(e.advance(&mut run, T0));
    assert_eq!(step, "hi");
    assert!(error.contains("`contact.name` is not set"), "{error}");
}

#[test]
fn loops_are_bounded_and_delays_count_days_in_the_time_zone() {
    let f = flow(
        "[trigger]\non = \"manual\"\n[[steps]]\nid = \"each\"\ntype = \"for_each\"\n\
         over = \"trigger.items\"\nmax = 2\n[[steps.do]]\nid = \"x\"\ntype = \"end\"\n",
    );
    let b = base();
    let e = engine(&f, &b);
    let mut run = Run::start(json!({"items": [1, 2, 3]}), Value::Null, T0);
    let (_, error) = failure(e.advance(&mut run, T0));
    assert!(
        error.contains("has 3 items, more than this for_each's max of 2"),
        "{error}"
    );
    let mut run = Run::start(json!({"items": "abc"}), Value::Null, T0);
    let (_, error) = failure(e.advance(&mut run, T0));
    assert!(error.contains("is not a list (it is a string)"), "{error}");

    // "1 day" across Berlin's autumn change is 25 hours; with the zone UTC, 24.
    let delay = |zone: &str| {
        flow(&format!(
            "[trigger]\non = \"manual\"\n[[steps]]\nid = \"wait\"\ntype = \"delay\"\nfor = \"1 day\"\ntime_zone = \"{zone}\"\n"
        ))
    };
    let saturday_noon: Millis = "2026-10-24T10:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    for (zone, hours) in [("Europe/Berlin", 25), ("UTC", 24)] {
        let f = delay(zone);
        let e = engine(&f, &b);
        let mut run = Run::start(json!({}), Value::Null, T0);
        assert_eq!(
            e.advance(&mut run, saturday_noon),
            Next::Sleep {
                until: saturday_noon + hours * 60 * MINUTE
            },
            "{zone}"
        );
    }
}

#[test]
fn a_step_come_back_to_acts_with_a_new_key_and_an_outstanding_action_keeps_its_own() {
    let f = checked(
        "[trigger]\non = \"manual\"\n\
         [[steps]]\nid = \"ask\"\ntype = \"send_text\"\nto = \"+4915112345678\"\ntext = \"Still there?\"\n\
         [[steps]]\nid = \"count\"\ntype = \"set\"\nvars = { n = \"{{ (vars.n | default('0') | int) + 1 }}\" }\n\
         [[steps]]\nid = \"pause\"\ntype = \"delay\"\nfor = \"1h\"\n\
         [[steps]]\nid = \"again\"\ntype = \"branch\"\ncases = [{ if = \"vars.n | int < 2\", goto = \"ask\" }]\n",
    );
    let b = base();
    let e = engine(&f, &b);
    let hour = 60 * MINUTE;
    let mut run = Run::start(json!({}), Value::Null, T0);
    let first = act(e.advance(&mut run, T0));
    assert_eq!(first.key, "1:ask#1");
    // Asked again before its outcome was recorded (a restart): the same key, not a new send.
    assert_eq!(act(e.advance(&mut run, T0)).key, first.key);
    // A late timer or reply changes nothing while an action is outstanding.
    assert_eq!(act(e.resume(&mut run, T0 + hour)).key, first.key);
    assert_eq!(act(e.reply(&mut run, json!("hi"), T0)).key, first.key);
    let sent = || Ok(json!({"status": "sent"}));
    assert_eq!(
        e.complete(&mut run, sent(), T0),
        Next::Sleep { until: T0 + hour }
    );
    // A second completion of the same action is ignored.
    assert_eq!(
        e.complete(&mut run, sent(), T0),
        Next::Sleep { until: T0 + hour }
    );
    // Back at `ask` an hour later: a new action, a new key.
    let second = act(e.resume(&mut run, T0 + hour));
    assert_eq!(second.key, "2:ask#1");
    assert_eq!(
        e.complete(&mut run, sent(), T0 + hour),
        Next::Sleep {
            until: T0 + 2 * hour
        }
    );
    assert_eq!(e.resume(&mut run, T0 + 2 * hour), Next::Done);
    assert_eq!(run.vars["n"], "2");
}

#[test]
fn null_is_not_set_and_a_condition_on_a_variable_not_set_fails() {
    let b = base();
    let text = |t: &str| {
        flow(&format!(
            "[trigger]\non = \"manual\"\n[[steps]]\nid = \"hi\"\ntype = \"send_text\"\ntext = \"{t}\"\n"
        ))
    };
    let f = text("Hi {{ contact.name }}");
    let e = engine(&f, &b);
    let mut run = Run::start(
        json!({}),
        json!({"phone": "+4915112345678", "name": null}),
        T0,
    );
    // A null name must not be sent as text.
    let (_, error) = failure(e.advance(&mut run, T0));
    assert!(error.contains("`contact.name` is not set"), "{error}");
    let f = text("Hi {{ contact.name | default('there') }}");
    let e = engine(&f, &b);
    let mut run = Run::start(
        json!({}),
        json!({"phone": "+4915112345678", "name": null}),
        T0,
    );
    assert_eq!(act(e.advance(&mut run, T0)).input["text"], "Hi there");

    let branch = |condition: &str| {
        flow(&format!(
            "[trigger]\non = \"manual\"\n[[steps]]\nid = \"b\"\ntype = \"branch\"\n\
             cases = [{{ if = \"{condition}\", goto = \"end\" }}]\n\
             [[steps]]\nid = \"after\"\ntype = \"hand_off\"\n"
        ))
    };
    let f = branch("trigger.flag == 'yes'");
    let e = engine(&f, &b);
    let mut run = Run::start(json!({}), Value::Null, T0);
    // A missing variable must not count as false.
    let (step, error) = failure(e.advance(&mut run, T0));
    assert_eq!(step, "b");
    assert!(error.contains("`trigger.flag` is not set"), "{error}");
    // Asking about it is allowed.
    let f = branch("trigger.flag is defined");
    let e = engine(&f, &b);
    let mut run = Run::start(json!({}), Value::Null, T0);
    assert_eq!(act(e.advance(&mut run, T0)).step, "after");
}

#[test]
fn each_item_of_a_loop_starts_without_the_previous_items_outputs() {
    let f = checked(
        "[trigger]\non = \"manual\"\n\
         [[steps]]\nid = \"each\"\ntype = \"for_each\"\nover = \"trigger.items\"\nas = \"it\"\n\
         [[steps.do]]\nid = \"which\"\ntype = \"branch\"\ncases = [{ if = \"it == 1\", goto = \"note\" }]\nelse = \"log\"\n\
         [[steps.do]]\nid = \"note\"\ntype = \"hand_off\"\n\
         [[steps.do]]\nid = \"log\"\ntype = \"set\"\nvars = { seen = \"{{ vars.seen | default('') }}{{ steps.note.handed_off if steps.note is defined else 'none' }},\" }\n\
         [[steps]]\nid = \"after\"\ntype = \"end\"\n",
    );
    let b = base();
    let e = engine(&f, &b);
    let mut run = Run::start(json!({"items": [1, 2]}), Value::Null, T0);
    let note = act(e.advance(&mut run, T0));
    assert_eq!(note.key, "1:each[0].note#1");
    // Item 2 skips `note`: it must not read item 1's.
    assert_eq!(
        e.complete(&mut run, Ok(json!({"handed_off": true})), T0),
        Next::Done
    );
    // Jinja prints booleans as True and False.
    assert_eq!(run.vars["seen"], "True,none,");
}
