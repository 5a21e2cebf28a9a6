//! Configuration as people may see it: secrets replaced, passwords cut out of URLs. Used by
//! the console's Settings page, the `serve` banner and its log line.

use toml::Value;

/// Field names whose values are secrets (any part, any case). `…_env` fields name an
/// environment variable, which is not itself a secret.
const SECRET_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
];

/// What a set secret shows as; an empty one stays empty, so an unset secret is visible.
pub const REDACTED: &str = "<redacted>";

/// Whether a field (a config key, a flow step's input, a header) holds a secret by its name;
/// `*_env` names the variable a secret is read from, which is not secret.
pub(crate) fn is_secret(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    !f.ends_with("_env") && SECRET_PARTS.iter().any(|p| f.contains(p))
}

/// `url` with any password replaced by `***`: in the authority (`postgres://rb:***@db/rb`)
/// and in the query (`?password=***`, as sqlx and libpq also accept).
pub fn url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = authority_without_password(base);
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if is_secret(k) || k.eq_ignore_ascii_case("sslpassword") => {
                    if v.is_empty() {
                        pair.to_string()
                    } else {
                        format!("{k}=***")
                    }
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{out}?{}", pairs.join("&"));
    }
    out
}

fn authority_without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &url[scheme_end + at..]
        ),
        _ => url.to_string(),
    }
}

fn scrub(field: &str, v: &mut Value) {
    match v {
        Value::String(s) if is_secret(field) && !s.is_empty() => *s = REDACTED.to_string(),
        Value::String(s) if s.contains("://") => *s = url(s),
        Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                scrub(k, v);
            }
        }
        Value::Array(items) => {
            for v in items {
                scrub(field, v);
            }
        }
        _ => {}
    }
}

/// The merged configuration (defaults, file, environment) as TOML, secrets redacted.
pub fn effective(merged: &Value) -> String {
    let mut v = merged.clone();
    scrub("", &mut v);
    toml::to_string_pretty(&v).unwrap_or_else(|e| format!("# could not be shown: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_are_hidden_and_names_of_variables_are_not() {
        let v: Value = toml::from_str(
            r#"
            [server]
            api_token = "real-token"
            listen = "127.0.0.1:8080"
            [store]
            url = "postgres://rb:s3cret@db/rb"
            [twilio]
            auth_token = ""
            [[senders]]
            access_token = "EAAG-real"
            [[assistants]]
            [assistants.provider]
            api_key_env = "OPENAI_API_KEY"
            "#,
        )
        .unwrap();
        let out = effective(&v);
        for secret in ["real-token", "s3cret", "EAAG-real"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("api_token = \"<redacted>\""), "{out}");
        assert!(
            out.contains("auth_token = \"\""),
            "an unset secret shows as unset: {out}"
        );
        assert!(out.contains("postgres://rb:***@db/rb"), "{out}");
        assert!(out.contains("api_key_env = \"OPENAI_API_KEY\""), "{out}");
        assert!(out.contains("listen = \"127.0.0.1:8080\""), "{out}");
    }

    #[test]
    fn only_a_password_is_cut_from_a_url() {
        assert_eq!(
            url("postgres://rb:s3cret@db:5432/rb?sslmode=require"),
            "postgres://rb:***@db:5432/rb?sslmode=require"
        );
        assert_eq!(url("postgres://rb@db/rb"), "postgres://rb@db/rb");
        assert_eq!(
            url("sqlite://data/ringback.db"),
            "sqlite://data/ringback.db"
        );
    }
}
