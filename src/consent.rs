//! The consent ledger's rules: who may be sent what.
//!
//! Every opt-in and opt-out is a record (source, category, evidence, time) in an append-only
//! ledger; the latest record for a person decides. A record for `all` speaks for every
//! category, so `STOP` (opt-out of all) silences a person until `START`, while Meta's
//! `user_preferences` "stop" only stops marketing. People are keyed by `wa_id` or, for
//! username users who have none (2026 business-scoped ids), by `bsuid:<user id>`.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    All,
    Marketing,
    Utility,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::All => "all",
            Category::Marketing => "marketing",
            Category::Utility => "utility",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        match s.to_ascii_lowercase().as_str() {
            "all" => Some(Category::All),
            "marketing" => Some(Category::Marketing),
            "utility" | "service" | "authentication" => Some(Category::Utility),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    OptIn,
    OptOut,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OptIn => "opt_in",
            Action::OptOut => "opt_out",
        }
    }
}

/// Where a record came from.
pub const SOURCES: &[&str] = &[
    "missed_call",
    "website_form",
    "api",
    "whatsapp_message",
    "import",
    "meta_user_preferences",
    "console",
    "click_to_chat",
];

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub sender_id: String,
    pub subject: String,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub category: Category,
    pub action: Action,
    pub source: String,
    pub evidence: String,
    pub at: Millis,
}

/// The ledger key for a person.
pub fn subject(wa_id: Option<&str>, user_id: Option<&str>) -> Option<String> {
    match (wa_id, user_id) {
        (Some(w), _) if !w.is_empty() => Some(w.trim_start_matches('+').to_string()),
        (_, Some(u)) if !u.is_empty() => Some(format!("bsuid:{u}")),
        _ => None,
    }
}

/// The latest decision per category for one person: `(category, action, at)`.
pub type State = Vec<(Category, Action, Millis)>;

/// May a message of `category` be sent? `Err` says why not.
pub fn permits(state: &State, category: Category) -> Result<(), String> {
    let latest = state
        .iter()
        .filter(|(c, ..)| *c == Category::All || *c == category)
        .max_by_key(|(_, _, at)| *at);
    match latest {
        Some((c, Action::OptOut, at)) => Err(format!(
            "the recipient opted out of {} messages at {}; only a new opt-in (for example START) allows sending again",
            if *c == Category::All {
                "all".to_string()
            } else {
                c.as_str().to_string()
            },
            crate::time::display(*at)
        )),
        _ => Ok(()),
    }
}

/// A keyword message: `STOP` and its translations opt out of everything, `START` opts back in.
pub fn keyword(text: &str, stop: &[String], start: &[String]) -> Option<Action> {
    let t = text.trim().trim_end_matches(['.', '!']).to_lowercase();
    if stop.iter().any(|w| w.to_lowercase() == t) {
        Some(Action::OptOut)
    } else if start.iter().any(|w| w.to_lowercase() == t) {
        Some(Action::OptIn)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_record_decides_and_all_speaks_for_every_category() {
        let mut s: State = vec![(Category::Marketing, Action::OptOut, 10)];
        assert!(
            permits(&s, Category::Marketing)
                .unwrap_err()
                .contains("opted out of marketing")
        );
        assert!(permits(&s, Category::Utility).is_ok());
        s.push((Category::All, Action::OptOut, 20));
        assert!(
            permits(&s, Category::Utility)
                .unwrap_err()
                .contains("opted out of all")
        );
        s.push((Category::All, Action::OptIn, 30));
        assert!(permits(&s, Category::Marketing).is_ok());
    }

    #[test]
    fn keywords_in_several_languages() {
        let stop = vec!["STOP".to_string(), "PARAR".to_string(), "रोकें".to_string()];
        let start = vec!["START".to_string()];
        assert_eq!(keyword(" stop ", &stop, &start), Some(Action::OptOut));
        assert_eq!(keyword("Parar!", &stop, &start), Some(Action::OptOut));
        assert_eq!(keyword("रोकें", &stop, &start), Some(Action::OptOut));
        assert_eq!(keyword("start", &stop, &start), Some(Action::OptIn));
        assert_eq!(keyword("please stop calling", &stop, &start), None);
        assert_eq!(subject(None, Some("US.1")), Some("bsuid:US.1".into()));
    }
}
