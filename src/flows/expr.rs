//! Variable mapping and conditions: minijinja templates (`"Hi {{ trigger.name }}"`) and bare
//! expressions (`steps.fetch.status == 200`), and the variables each may name.
//!
//! minijinja rather than a hand-written `{{ }}` replacer: filters (`default`, `lower`,
//! `length`), comparisons and tests come with it, it only sees the values passed in (no file
//! or environment access), and it reports which variables a template uses, which is how a
//! misspelt variable is caught when a flow is checked instead of when a customer is messaged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use minijinja::Environment;

/// The variables every expression may start from.
pub const ROOTS: &[(&str, &str)] = &[
    (
        "trigger",
        "what started the run (the event's data, the HTTP body, the manual input)",
    ),
    (
        "steps",
        "each earlier step's output, by id: steps.fetch.body",
    ),
    ("vars", "variables set by `set` steps"),
    ("contact", "the customer: phone, name"),
    ("flow", "this flow: name, version"),
    ("run", "this run: id, started_at"),
    ("now", "the time the step runs (RFC 3339)"),
    (
        "env",
        "environment variables named RINGBACK_FLOW_…, and only those (tokens for HTTP steps)",
    ),
];

/// The prefix of the environment variables a flow may read as `env.NAME`: a flow file must not
/// be able to read the server's own secrets (database URL, access tokens).
pub const ENV_PREFIX: &str = "RINGBACK_FLOW_";

/// The environment flows are checked and rendered with: built once, shared (it holds only
/// settings and the built-in filters; templates are compiled per use).
pub fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
        let mut env = Environment::new();
        // A missing variable is an error, never an empty string sent to a customer.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env
    });
    &ENV
}

/// An expression compiled, and the variables it reads.
pub struct Compiled {
    pub expression: minijinja::Expression<'static, 'static>,
    pub references: BTreeSet<String>,
}

/// Distinct expressions kept compiled; beyond that the cache starts again (flows are few, but
/// flows posted through the API may come and go).
const COMPILED_LIMIT: usize = 4096;

/// `source` compiled once and kept: a flow's conditions are the same for every run that takes
/// them, and compiling (with finding its variables) was most of evaluating one.
pub fn compiled(source: &str) -> Result<Arc<Compiled>, minijinja::Error> {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<Compiled>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let cache = || {
        CACHE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(c) = cache().get(source) {
        return Ok(c.clone());
    }
    let expression = environment().compile_expression_owned(source.to_string())?;
    let references = expression.undeclared_variables(true).into_iter().collect();
    let c = Arc::new(Compiled {
        expression,
        references,
    });
    let mut kept = cache();
    if kept.len() >= COMPILED_LIMIT {
        kept.clear();
    }
    kept.insert(source.to_string(), c.clone());
    Ok(c)
}

/// What a piece of text is: a template with `{{ }}` inside, or a bare expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Template,
    Expression,
}

/// The variables (dotted paths such as `steps.fetch.body`) that `source` reads, or the
/// syntax error in words.
pub fn references(source: &str, form: Form) -> Result<BTreeSet<String>, String> {
    let env = environment();
    let found = match form {
        Form::Template => env
            .template_from_str(source)
            .map(|t| t.undeclared_variables(true)),
        Form::Expression => compiled(source).map(|c| c.references.iter().cloned().collect()),
    };
    found
        .map(|set| set.into_iter().collect())
        .map_err(|e| match e.detail() {
            Some(detail) => format!("{detail} in `{source}`"),
            None => format!("{} in `{source}`", e.kind()),
        })
}
