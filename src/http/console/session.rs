//! Who is asking: the session cookie, the extractors that require a signed-in person (and an
//! admin), and the checks every form post passes (same origin, the session's CSRF token).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::page::{self, Chrome};
use crate::http::AppState;
use crate::store::SignedIn;
use crate::users::Role;

/// The cookie's name. With `Secure`, the `__Host-` prefix makes browsers refuse it unless it
/// was set over HTTPS for this exact host and path `/` (no subdomain can plant one).
fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-rb_session"
    } else {
        "rb_session"
    }
}

/// The `Set-Cookie` value that carries a new session's token.
pub fn set_cookie(s: &AppState, token: &str) -> HeaderValue {
    let secure = s.settings.console.secure_cookies;
    let max_age = s.sessions.lifetime().as_secs();
    let value = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(s: &AppState) -> HeaderValue {
    let secure = s.settings.console.secure_cookies;
    let value = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session token the request's cookie carries.
pub fn token(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(s.settings.console.secure_cookies);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A signed-in person.
pub struct Visitor {
    pub session: SignedIn,
    pub token: String,
}

impl Visitor {
    /// The session of this request, if there is a valid one.
    pub async fn find(s: &AppState, headers: &HeaderMap) -> Result<Option<Visitor>, Response> {
        let Some(token) = token(s, headers) else {
            return Ok(None);
        };
        match s.sessions.find(&*s.store, &token).await {
            Ok(Some(session)) => Ok(Some(Visitor { session, token })),
            Ok(None) => Ok(None),
            Err(e) => Err(page::unavailable(e)),
        }
    }

    pub fn role(&self) -> Role {
        Role::of(&self.session.user)
    }

    /// The page header for this person on `page`.
    pub fn chrome(&self, page: &'static str) -> Chrome {
        Chrome {
            email: self.session.user.email.clone(),
            role: self.role().as_str(),
            admin: self.role() == Role::Admin,
            csrf: self.session.csrf.clone(),
            page,
        }
    }

    /// Checks a form this person posted: it comes from this site and carries the session's
    /// CSRF token.
    #[expect(
        clippy::result_large_err,
        reason = "the refusal is the page sent back, made once per refused form"
    )]
    pub fn check_form(
        &self,
        s: &AppState,
        headers: &HeaderMap,
        csrf: &str,
    ) -> Result<(), Response> {
        same_origin(s, headers)?;
        if crate::signature::tokens_equal(csrf, &self.session.csrf) {
            Ok(())
        } else {
            Err(page::problem(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from a page of this session (its security token does not match). Reload the page and send it again.".into(),
                Some(self.chrome("")),
            ))
        }
    }
}

/// Refuses a post whose `Origin` (which browsers send with every POST) is neither this host
/// nor `server.public_base_url`: a
/// cross-site form cannot sign someone in as the attacker or act in their session.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the page sent back, made once per refused form"
)]
pub fn same_origin(s: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    // Behind a proxy that rewrites `Host`, the public address is what browsers send.
    if s.settings
        .public_base_url
        .as_deref()
        .is_some_and(|public| public.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(page::problem(
            StatusCode::FORBIDDEN,
            "Refused",
            format!("This form was sent from {origin}, not from this console."),
            None,
        ))
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    /// Without a valid session, the browser goes to the sign-in page.
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        match Visitor::find(s, &parts.headers).await? {
            Some(v) => Ok(v),
            None => Err(page::see_other("/sign-in")),
        }
    }
}

/// A signed-in admin.
pub struct Admin(pub Visitor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    /// An agent is told the page is for admins (403), not sent elsewhere.
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let v = Visitor::from_request_parts(parts, s).await?;
        if v.role() == Role::Admin {
            Ok(Admin(v))
        } else {
            Err(page::problem(
                StatusCode::FORBIDDEN,
                "For admins only",
                format!(
                    "{} is signed in as an agent; ask an admin to open this page.",
                    v.session.user.email
                ),
                Some(v.chrome("")),
            ))
        }
    }
}
