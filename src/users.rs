//! The people who use the web console: their roles, their passwords (Argon2id, never stored
//! or logged in clear), signing in (with limits on wrong guesses) and the sessions it opens.
//!
//! Free of HTTP: the console's handlers (`src/http/console`) turn these results into pages
//! and cookies, and `ringback users` into lines on a terminal.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::{NewSession, SignedIn, Store, StoreError, User};
use crate::time::Millis;

/// What a user may do. Admins see and change settings (users, API keys); agents work the
/// conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub fn parse(v: &str) -> Result<Role, String> {
        match v {
            "admin" => Ok(Role::Admin),
            "agent" => Ok(Role::Agent),
            other => Err(format!("'{other}' is not a role: use admin or agent")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    /// The role of a stored user; an unknown value grants the least.
    pub fn of(user: &User) -> Role {
        Role::parse(&user.role).unwrap_or(Role::Agent)
    }
}

/// Shorter passwords are refused (NIST SP 800-63B asks for at least 8; we ask a little more).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer ones too: Argon2 would happily hash a megabyte on every guess.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user with the email {0} already exists")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An email as it is stored and compared: trimmed, lower case.
pub fn normalize_email(email: &str) -> Result<String, String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid {
        Ok(e)
    } else {
        Err(format!("'{}' is not an email address", email.trim()))
    }
}

fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password has {n} characters; use at least {MIN_PASSWORD_CHARS}"
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!(
            "the password has {n} characters; use at most {MAX_PASSWORD_CHARS}"
        ));
    }
    Ok(())
}

/// An Argon2id PHC string (`$argon2id$v=19$…`) with a fresh salt, computed off the async
/// threads (it takes tens of milliseconds and ~19 MiB by design).
pub async fn hash_password(password: &str) -> Result<String, String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| format!("the password could not be hashed: {e}"))
    })
    .await
    .map_err(|e| format!("the password could not be hashed: {e}"))?
}

/// Whether `password` is the one `phc` was made from. A malformed hash matches nothing.
async fn password_matches(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash no password matches, verified when the email is unknown so that a wrong email takes
/// as long as a wrong password (no probing for who has an account).
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        Argon2::default()
            .hash_password(&rand::random::<[u8; 32]>())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks a new user's email and password, saying what to change.
pub fn check_new(email: &str, password: &str) -> Result<(), String> {
    normalize_email(email)?;
    check_password(password)
}

/// Creates a user; the password is checked for length and stored as its hash only.
pub async fn create(
    store: &dyn Store,
    email: &str,
    role: Role,
    password: &str,
) -> Result<User, CreateError> {
    let email = normalize_email(email).map_err(CreateError::Invalid)?;
    check_password(password).map_err(CreateError::Invalid)?;
    let hash = hash_password(password)
        .await
        .map_err(CreateError::Invalid)?;
    let user = User {
        id: format!("usr_{}", uuid::Uuid::now_v7().simple()),
        email: email.clone(),
        role: role.as_str().to_string(),
        created_at: crate::time::now_ms(),
        disabled_at: None,
    };
    if !store.create_user(&user, &hash).await? {
        return Err(CreateError::Taken(email));
    }
    Ok(user)
}

/// A session just opened: the cookie's token (only its hash is stored) and what forms send.
#[derive(Debug, Clone)]
pub struct Opened {
    pub token: String,
    pub user: User,
    pub csrf: String,
    pub expires_at: Millis,
}

/// Why signing in failed. `Wrong` never says whether the email or the password was wrong.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the email or the password is wrong")]
    Wrong,
    #[error("too many sign-in attempts; try again in {retry_after_seconds} seconds")]
    TooMany { retry_after_seconds: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Signing in and out, with the limits on guessing: per account (slows a guess at one
/// person's password from many addresses) and per address (slows one address guessing many
/// accounts). In memory, per node: a restart forgets them, which costs an attacker a restart.
#[derive(Clone)]
pub struct Sessions {
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Accounts waiting after too many wrong passwords, until when.
    blocked: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    lifetime: Duration,
}

/// Wrong passwords per account: 5 at once, then one every 12 seconds (5 a minute).
const ACCOUNT_BURST: u32 = 5;
const ACCOUNT_PERIOD: Duration = Duration::from_secs(12);
/// Attempts per address: 20 at once, then one every 3 seconds.
const ADDRESS_BURST: u32 = 20;
const ADDRESS_PERIOD: Duration = Duration::from_secs(3);
/// Limiter keys kept before the idle ones are dropped.
const KEYS_KEPT: usize = 10_000;

fn limiter<K: std::hash::Hash + Eq + Clone>(
    burst: u32,
    period: Duration,
) -> Arc<DefaultKeyedRateLimiter<K>> {
    let quota = Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"));
    Arc::new(RateLimiter::keyed(quota))
}

impl Sessions {
    /// Sessions that last `lifetime` from sign-in.
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            per_account: limiter(ACCOUNT_BURST, ACCOUNT_PERIOD),
            per_address: limiter(ADDRESS_BURST, ADDRESS_PERIOD),
            blocked: Default::default(),
            lifetime,
        }
    }

    /// Checks the password and opens a session.
    pub async fn sign_in(
        &self,
        store: &dyn Store,
        email: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<Opened, SignInError> {
        let email = email.trim().to_lowercase();
        self.admit(&email, address)?;
        let found = store.user_credentials(&email).await?;
        let phc = found.as_ref().map_or(decoy_hash(), |(_, h)| h.as_str());
        let matches =
            password.chars().count() <= MAX_PASSWORD_CHARS && password_matches(password, phc).await;
        match found {
            Some((user, _)) if matches && user.disabled_at.is_none() => {
                self.open(store, user).await
            }
            _ => {
                self.failed(&email);
                Err(SignInError::Wrong)
            }
        }
    }

    /// Counts a wrong password against the account; once its allowance is spent, the account
    /// takes no attempt (not even a right one) until the wait is over.
    fn failed(&self, email: &str) {
        if let Err(not_until) = self.per_account.check_key(&email.to_string()) {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if blocked.len() > KEYS_KEPT {
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(email.to_string(), now + wait.max(Duration::from_secs(1)));
        }
    }

    /// Counts one attempt against the address (each costs an Argon2 hash), and refuses while
    /// either the address or the account (after wrong passwords: [`Sessions::failed`]) must
    /// wait. A right password does not count against the account, so a stranger's guesses
    /// lock it only for as long as they keep guessing.
    fn admit(&self, email: &str, address: IpAddr) -> Result<(), SignInError> {
        if self.per_account.len() > KEYS_KEPT || self.per_address.len() > KEYS_KEPT {
            self.per_account.retain_recent();
            self.per_address.retain_recent();
        }
        let clock = governor::clock::DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            use governor::clock::Clock;
            SignInError::TooMany {
                retry_after_seconds: not_until.wait_time_from(clock.now()).as_secs().max(1),
            }
        };
        let blocked_for = self
            .blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(email)
            .and_then(|until| until.checked_duration_since(std::time::Instant::now()));
        if let Some(left) = blocked_for {
            return Err(SignInError::TooMany {
                retry_after_seconds: left.as_secs().max(1),
            });
        }
        self.per_address.check_key(&address).map_err(wait)?;
        Ok(())
    }

    /// Opens a session for `user` (after a password matched, or when the first admin is
    /// created from the one-time setup link).
    pub async fn open(&self, store: &dyn Store, user: User) -> Result<Opened, SignInError> {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let now = crate::time::now_ms();
        let lifetime = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX);
        let session = NewSession {
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            csrf: hex::encode(rand::random::<[u8; 32]>()),
            created_at: now,
            expires_at: now.saturating_add(lifetime),
        };
        store.create_session(&session).await?;
        Ok(Opened {
            token,
            user,
            csrf: session.csrf,
            expires_at: session.expires_at,
        })
    }

    /// The session a cookie's token opens, if it is still valid.
    pub async fn find(
        &self,
        store: &dyn Store,
        token: &str,
    ) -> Result<Option<SignedIn>, StoreError> {
        store
            .session(&token_hash(token), crate::time::now_ms())
            .await
    }

    /// Signs out: the token opens nothing any more.
    pub async fn close(&self, store: &dyn Store, token: &str) -> Result<(), StoreError> {
        store.end_session(&token_hash(token)).await
    }

    /// How long a session lasts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// The stored form of a session token.
fn token_hash(token: &str) -> String {
    crate::api_keys::hash(token)
}

/// The one-time link `serve` prints while no user exists (and the server listens on loopback
/// only), which lets whoever opened the terminal create the first admin in the browser.
#[derive(Clone, Default)]
pub struct SetupLink {
    token: Arc<std::sync::Mutex<Option<String>>>,
}

impl SetupLink {
    /// A new link's token.
    pub fn issue(&self) -> String {
        let token = hex::encode(rand::random::<[u8; 16]>());
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        token
    }

    /// Whether `given` is the link's token (compared in constant time).
    pub fn valid(&self, given: &str) -> bool {
        let held = self.token.lock().unwrap_or_else(|e| e.into_inner());
        held.as_deref()
            .is_some_and(|t| crate::signature::tokens_equal(given, t))
    }

    /// Spends the link: it works once.
    pub fn spend(&self, given: &str) -> bool {
        let mut held = self.token.lock().unwrap_or_else(|e| e.into_inner());
        let ok = held
            .as_deref()
            .is_some_and(|t| crate::signature::tokens_equal(given, t));
        if ok {
            *held = None;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_compared_in_lower_case_and_checked() {
        assert_eq!(
            normalize_email("  Ann@Clinic.Example ").unwrap(),
            "ann@clinic.example"
        );
        for bad in [
            "ann",
            "@clinic.example",
            "ann@clinic",
            "a nn@clinic.example",
            "",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_too_short_or_too_long_are_refused_with_the_count() {
        let e = check_password("short").unwrap_err();
        assert!(
            e.contains("5 characters") && e.contains("at least 10"),
            "{e}"
        );
        assert!(check_password(&"x".repeat(257)).is_err());
        assert!(check_password("correct horse").is_ok());
    }

    #[tokio::test]
    async fn a_hash_matches_its_password_only() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(password_matches("correct horse battery", &h).await);
        assert!(!password_matches("correct horse battery!", &h).await);
        assert!(!password_matches("anything", "not a phc string").await);
        assert!(!password_matches("anything", decoy_hash()).await);
    }

    #[test]
    fn after_five_quick_wrong_passwords_the_account_waits() {
        let s = Sessions::new(Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..=ACCOUNT_BURST {
            s.admit("ann@clinic.example", ip).unwrap();
            s.failed("ann@clinic.example");
        }
        match s.admit("ann@clinic.example", ip) {
            Err(SignInError::TooMany {
                retry_after_seconds,
            }) => {
                assert!(
                    (1..=12).contains(&retry_after_seconds),
                    "{retry_after_seconds}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Another account from the same address still may.
        s.admit("bob@clinic.example", ip).unwrap();
    }

    #[test]
    fn a_setup_link_works_once() {
        let link = SetupLink::default();
        assert!(!link.valid("anything"));
        let t = link.issue();
        assert!(link.valid(&t) && !link.valid("wrong"));
        assert!(link.spend(&t));
        assert!(!link.valid(&t) && !link.spend(&t));
    }
}
