//! Rendering a step's inputs against what a run knows: templates to text, expressions to
//! values. A variable that is not set fails the step with the variable's name — a customer
//! never receives "Hi ," because a field was missing.

use serde_json::{Map, Value};

use super::expr::{self, Form};

/// What a run's templates can read (see [`expr::ROOTS`]), plus the loop variables in scope.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub root: Map<String, Value>,
}

impl Context {
    /// The context of a run: `trigger`, `steps`, `vars`, `contact`, `flow`, `run`, `now` and
    /// `env` (only `RINGBACK_FLOW_…` variables) — `env_vars` are the process's environment.
    pub fn new(
        fields: impl IntoIterator<Item = (&'static str, Value)>,
        env_vars: impl IntoIterator<Item = (String, String)>,
    ) -> Context {
        let mut root: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let env: Map<String, Value> = env_vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(expr::ENV_PREFIX))
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        root.insert("env".into(), Value::Object(env));
        Context { root }
    }

    /// The same context with a loop variable set.
    pub fn with(&self, name: &str, value: Value) -> Context {
        let mut root = self.root.clone();
        root.insert(name.to_string(), value);
        Context { root }
    }

    /// The context for minijinja. A JSON `null` is left out, so it is *not set* like a missing
    /// key: `{{ contact.name }}` fails on either, and `default('there')` replaces either —
    /// never "None" sent to a customer.
    fn value(&self) -> minijinja::Value {
        let root: Map<String, Value> = self
            .root
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), without_nulls(v)))
            .collect();
        minijinja::Value::from(minijinja::value::Serde(root))
    }

    /// Whether the dotted `path` (`contact.name`) leads to a value that is set (not null).
    fn is_set(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        let Some(mut at) = parts.next().and_then(|p| self.root.get(p)) else {
            return false;
        };
        for p in parts {
            match at.get(p) {
                Some(v) => at = v,
                None => return false,
            }
        }
        !at.is_null()
    }
}

/// Renders a template (`"Hi {{ contact.name }}"`) to text.
pub fn text(source: &str, ctx: &Context) -> Result<String, String> {
    if let Some(done) = plain_text(source, ctx) {
        return Ok(done);
    }
    let env = expr::environment();
    let rendered = env
        .template_from_str(source)
        .and_then(|t| t.render(ctx.value()));
    rendered.map_err(|e| explain(source, Form::Template, ctx, &e))
}

/// What minijinja would render for the two commonest inputs of a step, without it: text with
/// no template syntax, and a template that is one variable holding a string
/// (`{{ trigger.phone }}`). minijinja compiles the template and converts the whole context for
/// each input, most of a simple run's own time; anything else (`None`) goes to minijinja.
fn plain_text(source: &str, ctx: &Context) -> Option<String> {
    // minijinja drops a trailing newline from a template (`keep_trailing_newline` is off),
    // and a trailing carriage return.
    if !source.contains(['{', '}']) && !source.ends_with(['\n', '\r']) {
        return Some(source.to_string());
    }
    let path = source.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let is_name = |p: &str| {
        p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && p.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && !matches!(p, "true" | "false" | "none" | "True" | "False" | "None")
    };
    if !path.split('.').all(is_name) {
        return None;
    }
    let mut parts = path.split('.');
    let mut at = ctx.root.get(parts.next()?)?;
    for p in parts {
        at = at.get(p)?;
    }
    at.as_str().map(str::to_string)
}

/// Evaluates an expression (`steps.fetch.status == 200`) to a value.
pub fn value(source: &str, ctx: &Context) -> Result<Value, String> {
    let evaluated = expr::compiled(source).and_then(|c| c.expression.eval(ctx.value()));
    let v = evaluated.map_err(|e| explain(source, Form::Expression, ctx, &e))?;
    if v.is_undefined() {
        return Err(missing(source, Form::Expression, ctx)
            .unwrap_or_else(|| format!("`{source}` has no value")));
    }
    serde_json::to_value(&v).map_err(|e| format!("`{source}` gave a value that is not data: {e}"))
}

/// Evaluates a condition: Jinja's truthiness (empty, 0 and false are false). A variable
/// that is not set fails it rather than counting as false — unless the condition asks about
/// it (`x is defined`, `x | default(…)`, `x is none`).
pub fn condition(source: &str, ctx: &Context) -> Result<bool, String> {
    let asks = ["default", "defined", "none"]
        .iter()
        .any(|w| source.contains(w));
    if !asks && let Some(m) = missing(source, Form::Expression, ctx) {
        return Err(m);
    }
    let evaluated = expr::compiled(source).and_then(|c| c.expression.eval(ctx.value()));
    match evaluated {
        Ok(v) if v.is_undefined() && !asks => Err(format!("`{source}` has no value")),
        Ok(v) => Ok(v.is_true()),
        Err(e) => Err(explain(source, Form::Expression, ctx, &e)),
    }
}

/// `v` with every `null` member of its objects left out.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// An error in words, naming the missing variable when that is what it is.
fn explain(source: &str, form: Form, ctx: &Context, e: &minijinja::Error) -> String {
    if e.kind() == minijinja::ErrorKind::UndefinedError
        && let Some(m) = missing(source, form, ctx)
    {
        return m;
    }
    match e.detail() {
        Some(d) => format!("{d} in `{source}`"),
        None => format!("{} in `{source}`", e.kind()),
    }
}

fn missing(source: &str, form: Form, ctx: &Context) -> Option<String> {
    let refs = expr::references(source, form).ok()?;
    refs.into_iter()
        .find(|r| !ctx.is_set(r))
        .map(|r| format!("`{r}` is not set (in `{source}`)"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What minijinja renders, without the shortcut.
    fn by_minijinja(source: &str, ctx: &Context) -> Result<String, String> {
        expr::environment()
            .template_from_str(source)
            .and_then(|t| t.render(ctx.value()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_shortcut_renders_what_minijinja_renders_or_leaves_it_to_minijinja() {
        let ctx = Context::new(
            [
                (
                    "trigger",
                    json!({"phone": "+14155550100", "name": "Ana <b>&", "score": 72,
                           "none": "x", "items": ["a"], "nested": {"deep": "yes"}, "gone": null}),
                ),
                ("contact", json!({"name": "Ana"})),
            ],
            Vec::new(),
        );
        let shortcut = [
            "a call back today",
            "",
            "  spaces kept  ",
            "{{ trigger.phone }}",
            "{{trigger.name}}",
            "{{ trigger.nested.deep }}",
            "{{ contact.name }}",
        ];
        for source in shortcut {
            let fast = plain_text(source, &ctx);
            assert!(fast.is_some(), "{source:?} takes the shortcut");
            assert_eq!(
                fast.unwrap(),
                by_minijinja(source, &ctx).unwrap(),
                "{source:?}"
            );
        }
        // Left to minijinja: numbers, lists, missing or null variables, keywords, filters,
        // text around a variable, a trailing newline, braces in the text.
        let left = [
            "{{ trigger.score }}",
            "{{ trigger.items }}",
            "{{ trigger.missing }}",
            "{{ trigger.gone }}",
            "{{ none }}",
            "{{ trigger.none }}",
            "{{ trigger.name | upper }}",
            "Hi {{ contact.name }}",
            "two lines\n",
            "a carriage return\r",
            "{ not a template }",
            "{{ trigger.phone }}{{ trigger.phone }}",
        ];
        for source in left {
            assert_eq!(
                plain_text(source, &ctx),
                None,
                "{source:?} goes to minijinja"
            );
        }
        // And through `text`, the missing variable is still named.
        assert!(
            text("{{ trigger.missing }}", &ctx)
                .unwrap_err()
                .contains("trigger.missing")
        );
    }

    #[test]
    fn an_expression_is_compiled_once_and_evaluated_against_each_context() {
        let source = "trigger.score >= 50 and contact.name is defined";
        let first = expr::compiled(source).unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &first,
            &expr::compiled(source).unwrap()
        ));
        let ctx = |score: i64| {
            Context::new(
                [
                    ("trigger", json!({"score": score})),
                    ("contact", json!({"name": "Ana"})),
                ],
                Vec::new(),
            )
        };
        assert_eq!(condition(source, &ctx(72)), Ok(true));
        assert_eq!(condition(source, &ctx(12)), Ok(false));
        let missing = Context::new([("contact", json!({}))], Vec::new());
        assert!(
            condition("trigger.score >= 50", &missing)
                .unwrap_err()
                .contains("trigger.score")
        );
    }
}
