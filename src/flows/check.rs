//! The rules a flow passes before it runs. Each problem names the line and step it is about
//! and says what to change; a flow with problems is not run.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::definition::{Flow, MAX_LOOP_ITEMS, Step, StepKind, TemplateRef, Trigger, Variables};
use super::expr::{self, Form, ROOTS};
use crate::cloud_api::template::Template;

/// One thing to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// 1-based line in the flow's file, when known.
    pub line: Option<usize>,
    pub step: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(step) = &self.step {
            write!(f, "step '{step}': ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<super::definition::ReadError> for Problem {
    fn from(e: super::definition::ReadError) -> Self {
        Problem {
            line: e.line,
            step: e.step,
            message: e.message,
        }
    }
}

/// Triggers that are not events.
const OTHER_TRIGGERS: &[&str] = &["http", "schedule", "manual"];
/// The target that ends a run.
pub const END: &str = "end";
/// Longest wait for a reply: Meta's customer service window is a day; a week covers a
/// weekend's silence.
const MAX_WAIT_SECONDS: i64 = 7 * 24 * 3600;
/// Longest HTTP step timeout.
const MAX_HTTP_TIMEOUT_SECONDS: i64 = 60;

/// Checks `flow`. `templates` is the template registry (name, language, status, variables);
/// `None` skips the template checks (no registry at hand).
pub fn check_flow(flow: &Flow, templates: Option<&[Template]>) -> Vec<Problem> {
    let mut c = Checker {
        templates,
        problems: Vec::new(),
        ids: HashMap::new(),
        vars: BTreeSet::new(),
    };
    if flow.name.is_empty()
        || flow.name.len() > 64
        || !flow
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        c.problem(
            Some(1),
            None,
            format!(
                "the flow's name '{}' must be 1-64 lowercase letters, digits, '-' or '_' (it is \
                 part of the URL /hooks/{{name}})",
                flow.name
            ),
        );
    }
    c.trigger(&flow.trigger, flow.trigger_line);
    if flow.steps.is_empty() {
        c.problem(
            None,
            None,
            "a flow needs at least one [[steps]] table".into(),
        );
    }
    c.collect_ids(&flow.steps);
    c.scope(&flow.steps, &[]);
    c.problems
}

struct Checker<'a> {
    templates: Option<&'a [Template]>,
    problems: Vec<Problem>,
    /// Every step id in the flow (nested ones included), with its line.
    ids: HashMap<String, usize>,
    /// Every variable a `set` step sets.
    vars: BTreeSet<String>,
}

impl Checker<'_> {
    fn problem(&mut self, line: Option<usize>, step: Option<&Step>, message: String) {
        self.problems.push(Problem {
            line: line.or(step.map(|s| s.line)),
            step: step.map(|s| s.id.clone()),
            message,
        });
    }

    fn at(&mut self, step: &Step, message: String) {
        self.problem(None, Some(step), message);
    }

    fn trigger(&mut self, t: &Trigger, line: usize) {
        let line = Some(line);
        let is_event = crate::events::TYPES.contains(&t.on.as_str());
        if !is_event && !OTHER_TRIGGERS.contains(&t.on.as_str()) {
            self.problem(
                line,
                None,
                format!(
                    "unknown trigger '{}'; a flow starts on an event ({}) or on {}",
                    t.on,
                    crate::events::TYPES.join(", "),
                    OTHER_TRIGGERS.join(", ")
                ),
            );
            return;
        }
        let message_filters = [
            ("keyword", t.keyword.is_some()),
            ("regex", t.regex.is_some()),
            ("reply_id", t.reply_id.is_some()),
            ("first_message", t.first_message.is_some()),
        ];
        for (key, set) in message_filters {
            if set && t.on != "message.received" {
                self.problem(
                    line,
                    None,
                    format!("`{key}` filters messages: it needs on = \"message.received\""),
                );
            }
        }
        if let Some(r) = &t.regex
            && let Err(e) = regex::Regex::new(r)
        {
            self.problem(line, None, format!("`regex` does not compile: {e}"));
        }
        if t.on == "schedule" {
            match t.cron.as_deref().map(str::parse::<croner::Cron>) {
                None => self.problem(
                    line,
                    None,
                    "a schedule needs `cron`, e.g. cron = \"0 9 * * MON-FRI\" (09:00 on weekdays)"
                        .into(),
                ),
                Some(Err(e)) => self.problem(line, None, format!("`cron` is not valid: {e}")),
                Some(Ok(_)) => {}
            }
            match &t.time_zone {
                None => self.problem(
                    line,
                    None,
                    "a schedule needs `time_zone`, e.g. time_zone = \"Europe/Berlin\": a \
                     schedule in the server's zone moves when the server does"
                        .into(),
                ),
                Some(z) => {
                    if let Err(why) = check_zone(z) {
                        self.problem(line, None, why);
                    }
                }
            }
        } else if t.cron.is_some() || t.time_zone.is_some() {
            self.problem(
                line,
                None,
                "`cron` and `time_zone` belong to on = \"schedule\"".into(),
            );
        }
        match (t.on == "http", &t.secret_env) {
            (true, None) => self.problem(
                line,
                None,
                "an HTTP trigger needs `secret_env`: the environment variable holding the secret \
                 its callers send (POST /hooks/{name} is public otherwise)"
                    .into(),
            ),
            (false, Some(_)) => {
                self.problem(line, None, "`secret_env` belongs to on = \"http\"".into())
            }
            (true, Some(var)) if !var.starts_with(super::expr::ENV_PREFIX) => self.problem(
                line,
                None,
                format!(
                    "`secret_env` = '{var}': name a variable that starts with {} (only those \
                     reach flows)",
                    super::expr::ENV_PREFIX
                ),
            ),
            _ => {}
        }
    }

    fn collect_ids(&mut self, steps: &[Step]) {
        for s in steps {
            let well_formed = !s.id.is_empty()
                && s.id.len() <= 64
                && s.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                self.at(
                    s,
                    "a step id is 1-64 lowercase letters, digits or '_' (it is how \
                     expressions name its output: steps.<id>)"
                        .into(),
                );
            }
            if s.id == END {
                self.at(
                    s,
                    "'end' is the target that ends a run; name the step otherwise".into(),
                );
            }
            if let Some(first) = self.ids.insert(s.id.clone(), s.line) {
                self.at(
                    s,
                    format!("the id is used twice (first on line {first}); ids must be unique"),
                );
            }
            match &s.kind {
                StepKind::ForEach { steps, .. } => self.collect_ids(steps),
                StepKind::Set { vars } => self.vars.extend(vars.keys().cloned()),
                _ => {}
            }
        }
    }

    /// Checks the steps of one scope (the flow, or a for_each body); `locals` are the loop
    /// variables in scope.
    fn scope(&mut self, steps: &[Step], locals: &[String]) {
        let here: BTreeSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        for s in steps {
            for (key, target) in targets(s) {
                if target != END && !here.contains(target) {
                    let why = if self.ids.contains_key(target) {
                        "is in another scope: a step inside a for_each goes only to steps of the \
                         same for_each, and the flow's steps cannot jump into one"
                    } else {
                        "is not a step of this flow"
                    };
                    self.at(
                        s,
                        format!("`{key}` = '{target}' {why} (or use 'end' to end the run)"),
                    );
                }
            }
            let next_is_dead = match &s.kind {
                StepKind::End => true,
                StepKind::Branch { otherwise, .. } => otherwise.is_some(),
                StepKind::Switch { default, .. } => default.is_some(),
                _ => false,
            };
            if next_is_dead && s.next.is_some() {
                self.at(
                    s,
                    format!(
                        "`next` is never followed: a {} step {}; remove it",
                        s.kind.name(),
                        match &s.kind {
                            StepKind::End => "ends the run",
                            StepKind::Branch { .. } => "with `else` always jumps",
                            _ => "with `default` always jumps",
                        }
                    ),
                );
            }
            if let Some(r) = &s.retry {
                if r.attempts == 0 || r.attempts > 10 {
                    self.at(s, "`retry.attempts` is 1 to 10".into());
                }
                self.duration(s, "retry.wait", &r.wait, 3600);
            }
            self.kind(s, locals);
        }
        if let Some(cycle) = busy_cycle(steps) {
            let first = steps.iter().find(|s| s.id == cycle[0]);
            self.problem(
                first.map(|s| s.line),
                first,
                format!(
                    "{} loops without a delay or wait_for_reply: a run would spin without \
                     end; add a delay step to the loop",
                    cycle.join(" → ")
                ),
            );
        }
    }

    fn kind(&mut self, s: &Step, locals: &[String]) {
        let text = |me: &mut Self, v: &str| me.source(s, v, Form::Template, locals);
        let cond = |me: &mut Self, v: &str| me.source(s, v, Form::Expression, locals);
        match &s.kind {
            StepKind::SendTemplate { to, template } => {
                to.iter().for_each(|v| text(self, v));
                self.template(s, template, locals);
            }
            StepKind::SendText {
                to,
                text: body,
                fallback,
            } => {
                to.iter().for_each(|v| text(self, v));
                text(self, body);
                if body.trim().is_empty() {
                    self.at(
                        s,
                        "`text` is empty: WhatsApp refuses an empty message".into(),
                    );
                }
                if let Some(f) = fallback {
                    self.template(s, f, locals);
                }
            }
            StepKind::SendInteractive {
                to,
                body,
                buttons,
                fallback,
            } => {
                to.iter().for_each(|v| text(self, v));
                text(self, body);
                if buttons.is_empty() || buttons.len() > 3 {
                    self.at(s, "an interactive message has 1 to 3 reply buttons".into());
                }
                let mut seen = BTreeSet::new();
                for b in buttons {
                    text(self, &b.title);
                    if b.title.chars().count() > 20 {
                        self.at(
                            s,
                            format!(
                                "button title '{}' is over WhatsApp's 20 characters",
                                b.title
                            ),
                        );
                    }
                    if !seen.insert(&b.id) {
                        self.at(s, format!("button id '{}' is used twice", b.id));
                    }
                }
                if let Some(f) = fallback {
                    self.template(s, f, locals);
                }
            }
            StepKind::SendMedia {
                to,
                media,
                url,
                caption,
                fallback,
            } => {
                to.iter().chain(caption.iter()).for_each(|v| text(self, v));
                text(self, url);
                if !["image", "video", "audio", "document", "sticker"].contains(&media.as_str()) {
                    self.at(
                        s,
                        format!(
                            "`media` = '{media}': use image, video, audio, document or sticker"
                        ),
                    );
                }
                if let Some(f) = fallback {
                    self.template(s, f, locals);
                }
            }
            StepKind::GenerateReply {
                assistant,
                customer,
                message,
            } => {
                text(self, customer);
                text(self, message);
                if assistant.as_deref().is_none_or(|a| a.trim().is_empty()) {
                    self.at(
                        s,
                        "name the assistant that writes the reply: assistant = \"front-desk\" \
                         (assistants are declared under [[assistants]] in the configuration)"
                            .into(),
                    );
                }
            }
            StepKind::Delay {
                duration,
                until,
                time_zone,
            } => {
                match (duration, until) {
                    (Some(d), None) => self.duration(s, "for", d, 366 * 24 * 3600),
                    (None, Some(u)) => text(self, u),
                    _ => self.at(
                        s,
                        "a delay has either `for` (a duration: \"5m\", \"2h 30m\", \"3 days\") or \
                         `until` (a time), not both or neither"
                            .into(),
                    ),
                }
                if let Some(z) = time_zone
                    && z != "contact"
                    && z != "business"
                    && let Err(why) = check_zone(z)
                {
                    self.at(s, format!("{why} (or \"contact\", \"business\")"));
                }
            }
            StepKind::WaitForReply { timeout, .. } => {
                self.duration(s, "timeout", timeout, MAX_WAIT_SECONDS);
            }
            StepKind::Branch { cases, .. } => {
                if cases.is_empty() {
                    self.at(
                        s,
                        "a branch needs at least one case: cases = [{ if = \"…\", goto = \"…\" }]"
                            .into(),
                    );
                }
                for case in cases {
                    cond(self, &case.condition);
                }
            }
            StepKind::Switch { value, cases, .. } => {
                cond(self, value);
                if cases.is_empty() {
                    self.at(s, "a switch needs `cases`: value → step id".into());
                }
            }
            StepKind::Http {
                method,
                url,
                headers,
                body,
                timeout,
            } => {
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                    self.at(
                        s,
                        format!("`method` = '{method}': use GET, POST, PUT, PATCH or DELETE"),
                    );
                }
                text(self, url);
                let http_url = reqwest::Url::parse(url)
                    .is_ok_and(|u| u.scheme() == "http" || u.scheme() == "https");
                if !url.contains("{{") && !http_url {
                    self.at(s, format!("`url` '{url}' is not an http(s) URL"));
                }
                headers.values().for_each(|v| text(self, v));
                if let Some(b) = body {
                    for v in strings(b) {
                        text(self, v);
                    }
                }
                if let Some(t) = timeout {
                    self.duration(s, "timeout", t, MAX_HTTP_TIMEOUT_SECONDS);
                }
            }
            StepKind::Set { vars } => {
                if vars.is_empty() {
                    self.at(s, "a set step needs `vars`: name → value".into());
                }
                vars.values().for_each(|v| text(self, v));
            }
            StepKind::ForEach {
                over,
                var,
                max,
                steps,
            } => {
                cond(self, over);
                if *max == 0 || *max > MAX_LOOP_ITEMS {
                    self.at(
                        s,
                        format!(
                            "`max` = {max}: a for_each goes over 1 to {MAX_LOOP_ITEMS} items (a \
                             longer list fails the step with its length)"
                        ),
                    );
                }
                if ROOTS.iter().any(|(r, _)| r == var) {
                    self.at(s, format!("`as` = '{var}' hides the variable of that name"));
                }
                if steps.is_empty() {
                    self.at(s, "a for_each needs steps: [[steps.do]] tables".into());
                }
                let mut inner = locals.to_vec();
                inner.push(var.clone());
                self.scope(steps, &inner);
            }
            StepKind::RequestCallPermission { to } => to.iter().for_each(|v| text(self, v)),
            StepKind::HandOff { note } => note.iter().for_each(|v| text(self, v)),
            StepKind::End => {}
        }
    }

    /// A template or expression: its syntax, and that every variable it names exists.
    fn source(&mut self, s: &Step, source: &str, form: Form, locals: &[String]) {
        let refs = match expr::references(source, form) {
            Ok(r) => r,
            Err(why) => return self.at(s, why),
        };
        for r in refs {
            let mut parts = r.split('.');
            let root = parts.next().unwrap_or_default();
            if locals.iter().any(|l| l == root) {
                continue;
            }
            if !ROOTS.iter().any(|(name, _)| *name == root) {
                let names: Vec<&str> = ROOTS
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(locals.iter().map(String::as_str))
                    .collect();
                self.at(
                    s,
                    format!(
                        "unknown variable `{root}` in `{source}`; the variables are: {}",
                        names.join(", ")
                    ),
                );
                continue;
            }
            if root == "env"
                && let Some(name) = parts.next()
                && !name.starts_with(expr::ENV_PREFIX)
            {
                self.at(
                    s,
                    format!(
                        "`env.{name}` in `{source}`: a flow reads only environment variables named {}… (rename it, e.g. {}{name})",
                        expr::ENV_PREFIX,
                        expr::ENV_PREFIX
                    ),
                );
            }
            if root == "vars"
                && let Some(name) = parts.next()
                && !self.vars.contains(name)
            {
                self.at(
                    s,
                    format!("`vars.{name}` in `{source}`: no `set` step sets '{name}'"),
                );
            }
            if root == "steps"
                && let Some(id) = parts.next()
            {
                if !self.ids.contains_key(id) {
                    self.at(
                        s,
                        format!("`steps.{id}` in `{source}`: no step has the id '{id}'"),
                    );
                } else if id == s.id {
                    self.at(
                        s,
                        format!("`steps.{id}` in `{source}`: a step cannot read its own output"),
                    );
                }
            }
        }
    }

    fn duration(&mut self, s: &Step, key: &str, value: &str, max_seconds: i64) {
        match parse_duration(value) {
            Ok(secs) if secs <= 0 => self.at(s, format!("`{key}` = '{value}' must be positive")),
            Ok(secs) if secs > max_seconds => self.at(
                s,
                format!(
                    "`{key}` = '{value}' is longer than the most allowed ({})",
                    jiff::SignedDuration::from_secs(max_seconds)
                ),
            ),
            Ok(_) => {}
            Err(why) => self.at(s, format!("`{key}` = '{value}': {why}")),
        }
    }

    /// A template send: the template exists in the registry for that language, is approved,
    /// and every variable it has is mapped (no more, no fewer).
    fn template(&mut self, s: &Step, t: &TemplateRef, locals: &[String]) {
        let values: Vec<&String> = match &t.variables {
            Variables::Positional(v) => v.iter().collect(),
            Variables::Named(m) => m.values().collect(),
        };
        for v in values {
            self.source(s, v, Form::Template, locals);
        }
        let Some(registry) = self.templates else {
            return;
        };
        let same_name: Vec<&Template> = registry.iter().filter(|x| x.name == t.template).collect();
        let Some(found) = same_name.iter().find(|x| x.language == t.language) else {
            let why = if same_name.is_empty() {
                format!(
                    "template '{}' is not in the template registry (`ringback templates` lists \
                     it; check the name, or sync or declare the template)",
                    t.template
                )
            } else {
                let langs: Vec<&str> = same_name.iter().map(|x| x.language.as_str()).collect();
                format!(
                    "template '{}' has no '{}' translation; it has: {}",
                    t.template,
                    t.language,
                    langs.join(", ")
                )
            };
            return self.at(s, why);
        };
        if !found.status.eq_ignore_ascii_case("APPROVED") {
            self.at(
                s,
                format!(
                    "template '{}' ({}) is {}: Meta sends only approved templates",
                    t.template, t.language, found.status
                ),
            );
        }
        let wanted = found.body_params();
        match &t.variables {
            Variables::Named(m) if found.is_named() => {
                let given: BTreeSet<&str> = m.keys().map(String::as_str).collect();
                let want: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
                let missing: Vec<&str> = want.difference(&given).copied().collect();
                let extra: Vec<&str> = given.difference(&want).copied().collect();
                if !missing.is_empty() || !extra.is_empty() {
                    self.at(
                        s,
                        format!(
                            "template '{}' takes the variables {{{}}}: missing [{}], unknown [{}]",
                            t.template,
                            wanted.join(", "),
                            missing.join(", "),
                            extra.join(", ")
                        ),
                    );
                }
            }
            Variables::Positional(v) if !found.is_named() || wanted.is_empty() => {
                if v.len() != wanted.len() {
                    self.at(
                        s,
                        format!(
                            "template '{}' has {} variable(s) ({}); `variables` maps {}",
                            t.template,
                            wanted.len(),
                            wanted
                                .iter()
                                .map(|w| format!("{{{{{w}}}}}"))
                                .collect::<Vec<_>>()
                                .join(" "),
                            v.len()
                        ),
                    );
                }
            }
            _ => self.at(
                s,
                format!(
                    "template '{}' uses {} variables ({}): write `variables` as {}",
                    t.template,
                    found.parameter_format,
                    wanted.join(", "),
                    if found.is_named() {
                        "a table: variables = { first_name = \"{{ contact.name }}\" }"
                    } else {
                        "a list: variables = [\"{{ contact.name }}\", …]"
                    }
                ),
            ),
        }
    }
}

/// Every step a step may go to, with the key that names it.
pub fn targets(s: &Step) -> Vec<(&'static str, &str)> {
    let mut out: Vec<(&'static str, &str)> = Vec::new();
    out.extend(s.next.as_deref().map(|t| ("next", t)));
    out.extend(s.on_error.as_deref().map(|t| ("on_error", t)));
    match &s.kind {
        StepKind::Branch { cases, otherwise } => {
            out.extend(cases.iter().map(|c| ("goto", c.goto.as_str())));
            out.extend(otherwise.as_deref().map(|t| ("else", t)));
        }
        StepKind::Switch { cases, default, .. } => {
            out.extend(cases.values().map(|t| ("cases", t.as_str())));
            out.extend(default.as_deref().map(|t| ("default", t)));
        }
        StepKind::WaitForReply { on_timeout, .. } => out.push(("on_timeout", on_timeout)),
        _ => {}
    }
    out
}

/// The steps a step can be followed by within its scope, by index (`None` = the run ends).
fn successors(steps: &[Step], i: usize) -> Vec<Option<usize>> {
    let s = &steps[i];
    let index = |id: &str| steps.iter().position(|x| x.id == id);
    let fall_through = if i + 1 < steps.len() {
        Some(i + 1)
    } else {
        None
    };
    let default_next = match &s.next {
        Some(t) => index(t),
        None => fall_through,
    };
    let mut out: Vec<Option<usize>> = targets(s)
        .into_iter()
        .filter(|(key, _)| *key != "next")
        .map(|(_, t)| index(t))
        .collect();
    let continues = match &s.kind {
        StepKind::End => false,
        StepKind::Branch { otherwise, .. } => otherwise.is_none(),
        StepKind::Switch { default, .. } => default.is_none(),
        _ => true,
    };
    if continues {
        out.push(default_next);
    }
    out
}

/// A cycle of steps none of which waits, as ids, if there is one.
fn busy_cycle(steps: &[Step]) -> Option<Vec<String>> {
    // 0 = not seen, 1 = on the current path, 2 = done.
    fn visit(
        steps: &[Step],
        i: usize,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        if steps[i].kind.waits() {
            return None;
        }
        match state[i] {
            1 => {
                let from = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[from..].iter().map(|&p| steps[p].id.clone()).collect();
                cycle.push(steps[i].id.clone());
                return Some(cycle);
            }
            2 => return None,
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for next in successors(steps, i).into_iter().flatten() {
            if let Some(c) = visit(steps, next, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; steps.len()];
    (0..steps.len()).find_map(|i| visit(steps, i, &mut state, &mut Vec::new()))
}

/// Every string inside a JSON-like TOML value (an HTTP body's templates).
fn strings(v: &toml::Value) -> Vec<&str> {
    match v {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(a) => a.iter().flat_map(strings).collect(),
        toml::Value::Table(t) => t.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// A duration as people write it (`5m`, `2h 30m`, `3 days`, ISO 8601 `PT5M`), in seconds. Days
/// count as 24 hours here; a delay reads them in its time zone when it runs.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let span: jiff::Span = s.trim().parse().map_err(|e| {
        format!("not a duration ({e}); write e.g. \"90s\", \"5m\", \"2h 30m\", \"3 days\"")
    })?;
    let rel = jiff::SpanRelativeTo::days_are_24_hours();
    span.total((jiff::Unit::Second, rel))
        .map(|secs| secs as i64)
        .map_err(|e| format!("not a fixed length ({e}); use days, hours, minutes or seconds"))
}

/// An IANA time zone name, or why not.
pub fn check_zone(z: &str) -> Result<(), String> {
    jiff::tz::TimeZone::get(z).map(|_| ()).map_err(|_| {
        format!(
            "`time_zone` = '{z}' is not an IANA time zone such as Europe/Berlin or America/New_York"
        )
    })
}
