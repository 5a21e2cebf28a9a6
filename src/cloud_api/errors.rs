//! What to do about each Meta error code (Cloud API reference §4.3 and §7.7).
//!
//! One table, used by the outbox (retry or give up), the API and the CLI (explain it to a
//! person). Codes not in the table are classified by HTTP status: 5xx and 429 retry, the rest
//! give up.

use serde::Serialize;

/// What the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Transient: back off and send again.
    Retry,
    /// A limit was hit: wait (longer) and send again.
    Wait,
    /// The request itself is wrong: fix it; resending as-is fails again.
    FixInput,
    /// Something outside the request must change (token, payment, account); do not resend as-is.
    FixAccount,
    /// It will not work for this recipient; do not resend.
    GiveUp,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub code: i64,
    pub action: Action,
    /// What happened, in plain words.
    pub meaning: &'static str,
    /// What to change so it works.
    pub fix: &'static str,
}

const fn e(code: i64, action: Action, meaning: &'static str, fix: &'static str) -> ErrorInfo {
    ErrorInfo {
        code,
        action,
        meaning,
        fix,
    }
}

use Action::*;

/// Every code from the reference.
pub const TABLE: &[ErrorInfo] = &[
    e(
        0,
        FixAccount,
        "Meta could not authenticate the request: the access token expired or was invalidated.",
        "Create a new system-user token and set it as the sender's access_token.",
    ),
    e(
        1,
        Retry,
        "Meta reported an unknown error, possibly a server problem.",
        "Ringback retries a few times; if it persists, check Meta's status page.",
    ),
    e(
        2,
        Retry,
        "The Cloud API is temporarily down or overloaded.",
        "Nothing: Ringback retries with backoff.",
    ),
    e(
        3,
        FixAccount,
        "The app lacks the capability or permission for this call.",
        "Check the app's permissions (whatsapp_business_messaging) in the App Dashboard.",
    ),
    e(
        4,
        Wait,
        "The app made too many API calls.",
        "Ringback waits and retries; lower the send rate if it repeats.",
    ),
    e(
        10,
        FixAccount,
        "Permission denied, or the number is not eligible for this feature.",
        "Grant the app the needed permission or complete the eligibility steps.",
    ),
    e(
        33,
        GiveUp,
        "The business phone number was deleted.",
        "Remove this sender or register the number again.",
    ),
    e(
        100,
        FixInput,
        "A parameter is invalid: unknown, misspelled or too long.",
        "Check the request fields against the Cloud API reference.",
    ),
    e(
        104,
        FixAccount,
        "No access token was sent.",
        "Set the sender's access_token.",
    ),
    e(
        190,
        FixAccount,
        "The access token expired.",
        "Create a new token and set it as the sender's access_token.",
    ),
    e(
        200,
        FixAccount,
        "The app lacks an API permission.",
        "Grant the permission to the app's system user.",
    ),
    e(
        368,
        GiveUp,
        "The account is temporarily blocked for policy violations.",
        "Review the policy notice in WhatsApp Manager.",
    ),
    e(
        613,
        Wait,
        "Call-permission checks were made too fast.",
        "Ringback waits and retries.",
    ),
    e(
        80007,
        Wait,
        "The WhatsApp Business Account hit its rate limit.",
        "Ringback backs off; spread sends over time.",
    ),
    e(
        130429,
        Wait,
        "The number's throughput (messages per second) was exceeded.",
        "Ringback paces and retries; the default is 80 messages/s per number.",
    ),
    e(
        130472,
        GiveUp,
        "The user's number is part of a Meta marketing experiment.",
        "Nothing to fix; this user cannot get this message now.",
    ),
    e(
        130497,
        GiveUp,
        "The business may not message users in this country.",
        "Check the country restrictions of your business account.",
    ),
    e(
        131000,
        Retry,
        "Something went wrong at Meta.",
        "Ringback retries; if it persists, contact Meta support.",
    ),
    e(
        131005,
        FixAccount,
        "Access denied.",
        "Check the token's permissions and the number's ownership.",
    ),
    e(
        131008,
        FixInput,
        "A required parameter is missing.",
        "Add the missing field named in the details.",
    ),
    e(
        131009,
        FixInput,
        "A parameter value is invalid.",
        "Fix the value named in the details.",
    ),
    e(
        131016,
        Retry,
        "The service is temporarily unavailable.",
        "Ringback retries with backoff.",
    ),
    e(
        131021,
        FixInput,
        "The recipient is the sender's own number.",
        "Send to a different number.",
    ),
    e(
        131026,
        GiveUp,
        "The message could not be delivered: the number has no WhatsApp, an old app, or has not accepted the terms.",
        "Reach this person another way (SMS or a call).",
    ),
    e(
        131030,
        FixAccount,
        "The recipient is not in the test number's allowed list.",
        "Add the recipient in the App Dashboard (test numbers allow 5 recipients).",
    ),
    e(
        131031,
        GiveUp,
        "The business account is locked.",
        "Resolve the lock in WhatsApp Manager.",
    ),
    e(
        131037,
        FixAccount,
        "The number's display name is not approved.",
        "Get the display name approved in WhatsApp Manager.",
    ),
    e(
        131042,
        FixAccount,
        "A payment problem on the business account.",
        "Fix the payment method in Business Settings.",
    ),
    e(
        131044,
        FixAccount,
        "No valid payment method for calling.",
        "Add a payment method.",
    ),
    e(
        131045,
        FixAccount,
        "The number's certificate is wrong.",
        "Register the number again.",
    ),
    e(
        131047,
        FixInput,
        "More than 24 hours have passed since the user last wrote: only a template can be sent.",
        "Send an approved template instead of free-form text.",
    ),
    e(
        131048,
        GiveUp,
        "Too many users blocked or reported this number (spam rate limit).",
        "Improve message quality before sending more.",
    ),
    e(
        131049,
        // Meta: not delivered "to maintain healthy ecosystem engagement"; a resend within
        // the outbox's retry delays (seconds) fails the same way, so it is not retried.
        GiveUp,
        "Meta withheld the message to keep engagement healthy (per-user marketing limit).",
        "Wait at least 24 hours before sending this user marketing again.",
    ),
    e(
        131050,
        GiveUp,
        "The user stopped marketing messages from this business.",
        "Do not send marketing to this user; record the opt-out.",
    ),
    e(
        131051,
        FixInput,
        "The message type is not supported.",
        "Use a supported message type.",
    ),
    e(
        131052,
        GiveUp,
        "The user's media could not be downloaded.",
        "Ask the user to send it again.",
    ),
    e(
        131053,
        FixInput,
        "The media could not be uploaded (wrong type or size).",
        "Check the media's MIME type and size limits.",
    ),
    e(
        131055,
        FixInput,
        "This method is not allowed for this number.",
        "Use the API the number is set up for.",
    ),
    e(
        131056,
        Wait,
        "Too many messages to the same user too quickly (pair rate limit).",
        "Ringback waits 4^n seconds and retries.",
    ),
    e(
        131057,
        Retry,
        "The account is in maintenance mode (for example a throughput upgrade).",
        "Ringback retries in a minute.",
    ),
    e(
        132000,
        FixInput,
        "The number of template parameters does not match the template.",
        "Send exactly the parameters the approved template declares.",
    ),
    e(
        132001,
        FixInput,
        "The template does not exist in that language, or is not approved.",
        "Check the template name, language code and status.",
    ),
    e(
        132005,
        FixInput,
        "The filled-in template text is too long.",
        "Shorten the parameter values.",
    ),
    e(
        132007,
        FixInput,
        "The template's characters violate the format policy.",
        "Remove the offending characters from the parameters.",
    ),
    e(
        132008,
        FixInput,
        "A template parameter value is invalid.",
        "Fix the parameter named in the details.",
    ),
    e(
        132012,
        FixInput,
        "A template parameter has the wrong format.",
        "Match named versus positional parameters and their types.",
    ),
    e(
        132015,
        FixInput,
        "The template is paused for low quality.",
        "Edit the template or wait for it to be unpaused.",
    ),
    e(
        132016,
        GiveUp,
        "The template is disabled permanently.",
        "Create a new template.",
    ),
    e(
        132068,
        GiveUp,
        "The flow is blocked.",
        "Fix the flow in WhatsApp Manager.",
    ),
    e(
        132069,
        Wait,
        "The flow is throttled.",
        "Wait and send later.",
    ),
    e(
        133010,
        FixAccount,
        "The number is not registered on the Cloud API.",
        "Register the number.",
    ),
    e(
        135000,
        FixInput,
        "A generic user error.",
        "Check the request.",
    ),
    e(
        137000,
        FixInput,
        "The recipient's identity key changed.",
        "Confirm the user's identity before sending.",
    ),
    e(
        138000,
        FixAccount,
        "Calling is not enabled on this number.",
        "Enable calling in the number's settings.",
    ),
    e(
        138001,
        GiveUp,
        "The receiver cannot be called.",
        "Reach them another way.",
    ),
    e(
        138002,
        Wait,
        "Too many concurrent calls.",
        "Wait for calls to end.",
    ),
    e(
        138003,
        GiveUp,
        "A call to this user is already ongoing.",
        "Wait for it to end.",
    ),
    e(
        138005,
        Wait,
        "Call rate limit reached.",
        "Wait before calling again.",
    ),
    e(
        138006,
        FixInput,
        "No approved call permission from this user.",
        "Send a call-permission request first.",
    ),
    e(
        138009,
        Wait,
        "Call-permission request limit reached.",
        "Wait: 1 request per 24 h and 2 per 7 days.",
    ),
    e(
        138012,
        Wait,
        "Daily business-initiated call limit reached.",
        "Wait until the time given in the details.",
    ),
    e(
        138013,
        GiveUp,
        "Business-initiated calling is unavailable for this number.",
        "Not available for numbers in this country.",
    ),
    e(
        138017,
        FixInput,
        "A permanent call permission already exists.",
        "Do not request permission again.",
    ),
    e(
        2494100,
        Retry,
        "The account is in maintenance mode.",
        "Ringback retries shortly.",
    ),
];

/// The table row for `code`, if the reference documents it.
pub fn lookup(code: i64) -> Option<&'static ErrorInfo> {
    TABLE.iter().find(|e| e.code == code)
}

/// The action for a code, falling back on the HTTP status for unknown codes.
pub fn action_for(code: Option<i64>, http_status: u16) -> Action {
    if let Some(info) = code.and_then(lookup) {
        return info.action;
    }
    match code {
        Some(c) if (200..300).contains(&c) => FixAccount,
        Some(c) if (133000..134000).contains(&c) => FixAccount,
        _ if http_status == 429 || http_status >= 500 => Retry,
        _ => GiveUp,
    }
}

/// A sentence for people: `(#131047) … Fix: …`.
pub fn explain(code: i64) -> String {
    match lookup(code) {
        Some(i) => format!("(#{code}) {} Fix: {}", i.meaning, i.fix),
        None => format!(
            "(#{code}) Not in Ringback's table of Meta error codes; see Meta's error-code reference."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_classification() {
        assert_eq!(action_for(Some(130429), 400), Wait);
        assert_eq!(action_for(Some(131056), 400), Wait);
        assert_eq!(action_for(Some(131026), 400), GiveUp);
        assert_eq!(action_for(Some(132000), 400), FixInput);
        assert_eq!(action_for(None, 503), Retry);
        assert_eq!(action_for(Some(999_999), 500), Retry);
        assert_eq!(action_for(Some(999_999), 400), GiveUp);
        assert!(explain(131047).contains("template"));
    }

    #[test]
    fn table_has_no_duplicate_codes() {
        let mut codes: Vec<_> = TABLE.iter().map(|e| e.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }
}
