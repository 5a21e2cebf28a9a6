use super::definition::{StepKind, Variables, parse};
use super::*;
use crate::cloud_api::template::{Template, demo_templates};

fn registry() -> Vec<Template> {
    let mut t = demo_templates("waba");
    let mut pending = Template::simple("waba", 9, "spring_sale", "MARKETING", "Sale: {{1}}");
    pending.status = "PENDING".into();
    t.push(pending);
    t
}

/// Every problem of a flow file, as `line N: step 'x': message` lines.
fn problems(text: &str) -> Vec<String> {
    match parse(text, "test") {
        Ok(flow) => check_flow(&flow, Some(&registry()))
            .iter()
            .map(ToString::to_string)
            .collect(),
        Err(e) => vec![Problem::from(e).to_string()],
    }
}

fn assert_one(text: &str, wanted: &[&str]) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "one problem expected: {found:#?}");
    for w in wanted {
        assert!(found[0].contains(w), "{:?} lacks {w:?}", found[0]);
    }
}

const HEAD: &str = "[trigger]\non = \"call.missed\"\n";

#[test]
fn the_shipped_examples_are_clean() {
    for (name, text) in [
        (
            "post-call-follow-up",
            include_str!("../../examples/flows/post-call-follow-up.toml"),
        ),
        (
            "lead-qualification",
            include_str!("../../examples/flows/lead-qualification.toml"),
        ),
        (
            "appointment-reminders",
            include_str!("../../examples/flows/appointment-reminders.toml"),
        ),
    ] {
        let flow = parse(text, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(flow.name, name);
        let found = check_flow(&flow, Some(&registry()));
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn steps_are_read_into_their_types_with_their_lines() {
    let flow = parse(
        include_str!("../../examples/flows/appointment-reminders.toml"),
        "x",
    )
    .unwrap();
    assert_eq!(flow.trigger.on, "schedule");
    assert_eq!(flow.trigger.time_zone.as_deref(), Some("Europe/Berlin"));
    let StepKind::ForEach {
        over,
        var,
        max,
        steps,
    } = &flow.steps[1].kind
    else {
        panic!("{:?}", flow.steps[1]);
    };
    assert_eq!(
        (over.as_str(), var.as_str(), *max),
        ("steps.fetch.body.appointments", "appointment", 1000)
    );
    assert_eq!(steps[0].id, "remind");
    assert_eq!(steps[0].on_error.as_deref(), Some("log"));
    let StepKind::SendTemplate { template, .. } = &steps[0].kind else {
        panic!()
    };
    assert!(matches!(&template.variables, Variables::Named(m) if m.len() == 3));
    assert_eq!(template.language, "en_US");
    // Lines are the files' own: each step's `[[…]]` header, nested ones too.
    assert_eq!(flow.steps[0].line, 11);
    assert_eq!(steps[0].line, 25);
}

#[test]
fn a_misspelt_key_names_the_step_its_line_and_the_keys_it_takes() {
    let text = format!(
        "{HEAD}\n[[steps]]\nid = \"hello\"\ntype = \"send_template\"\ntempate = \"hello_world\"\n"
    );
    assert_one(
        &text,
        &[
            "line 4",
            "step 'hello'",
            "unknown field `tempate`",
            "`template`",
        ],
    );
}

#[test]
fn toml_syntax_errors_and_missing_ids_or_types_are_located() {
    assert_one(&format!("{HEAD}[[steps]\nid = \"a\"\n"), &["line 3"]);
    assert_one(
        &format!("{HEAD}[[steps]]\ntype = \"end\"\n"),
        &["line 3", "needs an `id`"],
    );
    assert_one(
        &format!("{HEAD}[[steps]]\nid = \"a\"\ntype = \"sned_text\"\n"),
        &["step 'a'", "unknown step type 'sned_text'", "send_text"],
    );
    assert_one("[[steps]]\nid = \"a\"\ntype = \"end\"\n", &["trigger"]);
}

#[test]
fn targets_must_exist_in_the_same_scope() {
    let text = format!(
        "{HEAD}[[steps]]\nid = \"a\"\ntype = \"hand_off\"\nnext = \"nowhere\"\n\
         [[steps]]\nid = \"b\"\ntype = \"end\"\n"
    );
    assert_one(&text, &["step 'a'", "`next` = 'nowhere' is not a step"]);
    let into_loop = format!(
        "{HEAD}[[steps]]\nid = \"a\"\ntype = \"hand_off\"\nnext = \"inner\"\n\
         [[steps]]\nid = \"each\"\ntype = \"for_each\"\nover = \"trigger.items\"\n\
         [[steps.do]]\nid = \"inner\"\ntype = \"end\"\n"
    );
    assert_one(&into_loop, &["step 'a'", "another scope"]);
    let twice = format!(
        "{HEAD}[[steps]]\nid = \"a\"\ntype = \"end\"\n[[steps]]\nid = \"a\"\ntype = \"end\"\n"
    );
    assert_one(&twice, &["line 6", "used twice (first on line 3)"]);
}

#[test]
fn a_loop_without_a_wait_is_refused_and_one_with_a_delay_is_not() {
    let busy = format!(
        "{HEAD}[[steps]]\nid = \"ask\"\ntype = \"hand_off\"\n\
         [[steps]]\nid = \"again\"\ntype = \"branch\"\n\
         cases = [{{ if = \"true\", goto = \"ask\" }}]\n"
    );
    assert_one(&busy, &["ask → again → ask", "without a delay"]);
    let paced = format!(
        "{HEAD}[[steps]]\nid = \"ask\"\ntype = \"hand_off\"\n\
         [[steps]]\nid = \"pause\"\ntype = \"delay\"\nfor = \"1h\"\n\
         [[steps]]\nid = \"again\"\ntype = \"branch\"\n\
         cases = [{{ if = \"true\", goto = \"ask\" }}]\n"
    );
    assert!(problems(&paced).is_empty(), "{:?}", problems(&paced));
}

#[test]
fn variables_must_exist() {
    let text = |expr: &str| {
        format!(
            "{HEAD}[[steps]]\nid = \"a\"\ntype = \"send_text\"\ntext = \"{expr}\"\n\
             [[steps]]\nid = \"b\"\ntype = \"set\"\nvars = {{ x = \"1\" }}\n"
        )
    };
    assert!(problems(&text("Hi {{ contact.name }} {{ steps.b.x }}")).is_empty());
    assert_one(
        &text("Hi {{ contat.name }}"),
        &["unknown variable `contat`", "contact"],
    );
    assert_one(
        &text("{{ steps.fetch.body }}"),
        &["no step has the id 'fetch'"],
    );
    assert_one(&text("{{ steps.a.status }}"), &["its own output"]);
    assert_one(&text("{{ env.DATABASE_URL }}"), &["RINGBACK_FLOW_"]);
    assert_one(&text("Hi {{ contact.name "), &["step 'a'", "contact.name"]);
    assert_one(&text("   "), &["empty"]);
}

#[test]
fn template_steps_are_checked_against_the_registry() {
    let send = |template: &str, extra: &str| {
        format!(
            "{HEAD}[[steps]]\nid = \"t\"\ntype = \"send_template\"\ntemplate = \"{template}\"\n{extra}"
        )
    };
    assert!(problems(&send("hello_world", "")).is_empty());
    assert_one(
        &send("helo_world", ""),
        &["'helo_world' is not in the template registry"],
    );
    assert_one(
        &send("hello_world", "language = \"de\"\n"),
        &["no 'de' translation", "en_US"],
    );
    assert_one(
        &send("missed_call_followup", "variables = [\"a\", \"b\"]\n"),
        &["has 3 variable(s) ({{1}} {{2}} {{3}})", "maps 2"],
    );
    assert_one(
        &send(
            "weekly_offer",
            "variables = { first_name = \"a\", ofer = \"b\" }\n",
        ),
        &["missing [offer]", "unknown [ofer]"],
    );
    assert_one(
        &send("weekly_offer", "variables = [\"a\", \"b\"]\n"),
        &["named variables", "a table"],
    );
    assert_one(
        &send("spring_sale", "variables = [\"a\"]\n"),
        &["is PENDING"],
    );
    // A text's fallback template is checked the same way.
    let fallback = format!(
        "{HEAD}[[steps]]\nid = \"t\"\ntype = \"send_text\"\ntext = \"hi\"\n\
         fallback = {{ template = \"nope\" }}\n"
    );
    assert_one(&fallback, &["'nope' is not in the template registry"]);
}

#[test]
fn schedules_need_a_valid_cron_and_time_zone() {
    let schedule = |extra: &str| {
        format!("[trigger]\non = \"schedule\"\n{extra}\n[[steps]]\nid = \"a\"\ntype = \"end\"\n")
    };
    assert!(
        problems(&schedule(
            "cron = \"0 9 * * MON-FRI\"\ntime_zone = \"America/New_York\""
        ))
        .is_empty()
    );
    assert_one(
        &schedule("cron = \"0 9 * * *\""),
        &["line 1", "needs `time_zone`"],
    );
    assert_one(
        &schedule("cron = \"0 9 * * *\"\ntime_zone = \"Mars/Olympus\""),
        &["'Mars/Olympus' is not an IANA time zone"],
    );
    assert_one(
        &schedule("cron = \"61 9 * * *\"\ntime_zone = \"UTC\""),
        &["`cron` is not valid"],
    );
    assert_one(
        "[trigger]\non = \"call.missed\"\ncron = \"0 9 * * *\"\n[[steps]]\nid = \"a\"\ntype = \"end\"\n",
        &["belong to on = \"schedule\""],
    );
    assert_one(
        "[trigger]\non = \"http\"\n[[steps]]\nid = \"a\"\ntype = \"end\"\n",
        &["needs `secret_env`"],
    );
    assert_one(
        "[trigger]\non = \"call.mised\"\n[[steps]]\nid = \"a\"\ntype = \"end\"\n",
        &["unknown trigger 'call.mised'", "call.missed"],
    );
    assert_one(
        "[trigger]\non = \"call.missed\"\nkeyword = \"PRICE\"\n[[steps]]\nid = \"a\"\ntype = \"end\"\n",
        &["needs on = \"message.received\""],
    );
}

#[test]
fn durations_loops_and_assistants_have_bounds() {
    let step = |body: &str| format!("{HEAD}[[steps]]\nid = \"s\"\n{body}\n");
    assert!(problems(&step("type = \"delay\"\nfor = \"2h 30m\"")).is_empty());
    assert!(
        problems(&step(
            "type = \"delay\"\nfor = \"3 days\"\ntime_zone = \"contact\""
        ))
        .is_empty()
    );
    assert_one(
        &step("type = \"delay\"\nfor = \"soon\""),
        &["`for` = 'soon'", "not a duration"],
    );
    assert_one(&step("type = \"delay\""), &["either `for`", "or `until`"]);
    assert_one(
        &step("type = \"wait_for_reply\"\ntimeout = \"30 days\"\non_timeout = \"end\""),
        &["longer than the most allowed"],
    );
    assert_one(
        &step(
            "type = \"for_each\"\nover = \"trigger.items\"\nmax = 20000\n[[steps.do]]\nid = \"x\"\ntype = \"end\"",
        ),
        &["`max` = 20000", "10000"],
    );
    assert_one(
        &step("type = \"generate_reply\"\ncustomer = \"{{ contact.phone }}\"\nmessage = \"hi\""),
        &["name the assistant"],
    );
    assert_one(
        &step("type = \"send_interactive\"\nbody = \"Pick\"\nbuttons = []"),
        &["1 to 3 reply buttons"],
    );
}

#[test]
fn a_next_that_is_never_followed_and_vars_never_set_are_refused() {
    assert_one(
        &format!(
            "{HEAD}[[steps]]\nid = \"a\"\ntype = \"end\"\nnext = \"b\"\n[[steps]]\nid = \"b\"\ntype = \"end\"\n"
        ),
        &["step 'a'", "`next` is never followed", "ends the run"],
    );
    assert_one(
        &format!(
            "{HEAD}[[steps]]\nid = \"a\"\ntype = \"branch\"\ncases = [{{ if = \"true\", goto = \"b\" }}]\n\
             else = \"b\"\nnext = \"b\"\n[[steps]]\nid = \"b\"\ntype = \"end\"\n"
        ),
        &["`next` is never followed", "with `else` always jumps"],
    );
    assert_one(
        &format!(
            "{HEAD}[[steps]]\nid = \"a\"\ntype = \"send_text\"\ntext = \"{{{{ vars.cuont }}}}\"\n\
                  [[steps]]\nid = \"b\"\ntype = \"set\"\nvars = {{ count = \"1\" }}\n"
        ),
        &["`vars.cuont`", "no `set` step sets 'cuont'"],
    );
}
