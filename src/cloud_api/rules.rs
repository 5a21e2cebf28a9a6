//! What Meta refuses synchronously: the shape and documented limits of every message type
//! (Cloud API reference §3.2 and the limits cheat-sheet §3.5). One rule book, used twice:
//! Ringback checks a send before it leaves, and the sandbox answers as Meta would. A refusal carries Meta's code
//! (100 invalid parameter, 131008 missing parameter, 131009 invalid value, 131051 unsupported
//! type, 132000/132001/132012 template errors) and a `details` sentence in Meta's style.

use serde_json::Value;

use super::template::Template;

/// The sending number as the rules need it.
pub struct SenderRef<'a> {
    /// Display number digits (a message to oneself is refused).
    pub display_digits: &'a str,
    pub waba_id: &'a str,
}

/// Why Meta would refuse a request: its error code, title and a `details` sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub title: &'static str,
    pub details: String,
}

impl Refusal {
    pub fn new(code: i64, title: &'static str, details: impl Into<String>) -> Self {
        Self {
            code,
            title,
            details: details.into(),
        }
    }
}

/// What validation learned about a send request.
#[derive(Debug)]
pub struct Validated {
    /// Recipient digits (the `wa_id`).
    pub to: String,
    /// `to` exactly as sent (echoed in `contacts[].input`).
    pub to_input: String,
    pub kind: String,
    /// Pricing category: the template's, or `service`.
    pub category: String,
}

/// Text and caption limits from the reference.
const TEXT_BODY: usize = 4096;
const CAPTION: usize = 1024;
const INTERACTIVE_BODY: usize = 1024;
const HEADER_FOOTER: usize = 60;
const BUTTON_TITLE: usize = 20;
const BUTTON_ID: usize = 256;
const LIST_ROWS: usize = 10;
const LIST_SECTIONS: usize = 10;
const ROW_ID: usize = 200;
const ROW_TITLE: usize = 24;
const ROW_DESCRIPTION: usize = 72;
const PRODUCTS: usize = 30;
const CONTACTS: usize = 257;
const OPAQUE: usize = 512;

fn invalid(details: impl Into<String>) -> Refusal {
    Refusal::new(100, "Invalid parameter", details)
}

fn missing(param: &str) -> Refusal {
    Refusal::new(
        131008,
        "Required parameter is missing",
        format!("The parameter {param} is required."),
    )
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, p| v.get(p))?.as_str()
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `param` must be at most `max` characters.
fn max_len(param: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if chars(value) > max {
        return Err(invalid(format!(
            "Param {param} must be at most {max} characters long; it has {}.",
            chars(value)
        )));
    }
    Ok(())
}

/// A required string field of at most `max` characters.
fn required_text(v: &Value, path: &[&str], param: &str, max: usize) -> Result<(), Refusal> {
    let s = str_at(v, path).ok_or_else(|| missing(param))?;
    if s.is_empty() {
        return Err(invalid(format!("Param {param} must not be empty.")));
    }
    max_len(param, s, max)
}

fn optional_text(v: &Value, path: &[&str], param: &str, max: usize) -> Result<(), Refusal> {
    match str_at(v, path) {
        Some(s) => max_len(param, s, max),
        None => Ok(()),
    }
}

/// Checks a send request; `templates` may hold every WABA's (only the number's are used).
pub fn validate(
    sender: &SenderRef<'_>,
    templates: &[Template],
    req: &Value,
) -> Result<Validated, Refusal> {
    if req.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(invalid(
            "The parameter messaging_product is required and must be 'whatsapp'.",
        ));
    }
    if let Some(rt) = req.get("recipient_type").and_then(Value::as_str)
        && rt != "individual"
        && rt != "group"
    {
        return Err(invalid(format!(
            "recipient_type '{rt}' must be 'individual' or 'group'."
        )));
    }
    optional_text(
        req,
        &["biz_opaque_callback_data"],
        "biz_opaque_callback_data",
        OPAQUE,
    )?;
    let to_input = req
        .get("to")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("to"))?;
    let digits: String = to_input.chars().filter(char::is_ascii_digit).collect();
    let allowed = to_input
        .chars()
        .all(|c| c.is_ascii_digit() || "+-() ".contains(c));
    if !allowed || !(7..=15).contains(&digits.len()) {
        return Err(Refusal::new(
            131009,
            "Parameter value is not valid",
            format!("'{to_input}' is not a valid phone number."),
        ));
    }
    if digits == sender.display_digits {
        return Err(Refusal::new(
            131021,
            "Recipient cannot be sender",
            "Sender and recipient phone number is the same.",
        ));
    }
    let kind = req
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text")
        .to_string();
    let mut category = "service".to_string();
    match kind.as_str() {
        "text" => {
            required_text(req, &["text", "body"], "text['body']", TEXT_BODY)?;
            if let Some(p) = req["text"].get("preview_url")
                && !p.is_boolean()
            {
                return Err(invalid("Param text['preview_url'] must be a boolean."));
            }
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            media(&kind, req.get(kind.as_str()))?
        }
        "location" => location(req.get("location").ok_or_else(|| missing("location"))?)?,
        "contacts" => contacts(req.get("contacts").ok_or_else(|| missing("contacts"))?)?,
        "reaction" => {
            let r = req.get("reaction").ok_or_else(|| missing("reaction"))?;
            str_at(r, &["message_id"]).ok_or_else(|| missing("reaction['message_id']"))?;
            if r.get("emoji").is_some_and(|e| !e.is_string()) {
                return Err(invalid("Param reaction['emoji'] must be a string."));
            }
        }
        "interactive" => interactive(
            req.get("interactive")
                .ok_or_else(|| missing("interactive"))?,
        )?,
        "template" => category = template(sender.waba_id, templates, req)?,
        other => {
            return Err(Refusal::new(
                131051,
                "Unsupported message type",
                format!("Message type '{other}' is not supported."),
            ));
        }
    }
    Ok(Validated {
        to: digits,
        to_input: to_input.to_string(),
        kind,
        category,
    })
}

fn media(kind: &str, obj: Option<&Value>) -> Result<(), Refusal> {
    let m = obj.ok_or_else(|| missing(kind))?;
    let (id, link) = (
        m.get("id").and_then(Value::as_str),
        m.get("link").and_then(Value::as_str),
    );
    match (id, link) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "Param {kind} must have either 'id' or 'link', not both."
            )));
        }
        (None, None) => return Err(missing(&format!("{kind}['id'] or {kind}['link']"))),
        (None, Some(l)) if !(l.starts_with("https://") || l.starts_with("http://")) => {
            return Err(invalid(format!(
                "Param {kind}['link'] must be an http or https URL."
            )));
        }
        _ => {}
    }
    match kind {
        "audio" | "sticker" if m.get("caption").is_some() => Err(invalid(format!(
            "Param {kind}['caption'] is not allowed: {kind} messages have no caption."
        ))),
        _ => optional_text(m, &["caption"], &format!("{kind}['caption']"), CAPTION),
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn location(l: &Value) -> Result<(), Refusal> {
    let lat = number(l.get("latitude")).ok_or_else(|| missing("location['latitude']"))?;
    let lon = number(l.get("longitude")).ok_or_else(|| missing("location['longitude']"))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Refusal::new(
            131009,
            "Parameter value is not valid",
            "Latitude must be within ±90 and longitude within ±180.",
        ));
    }
    Ok(())
}

fn contacts(c: &Value) -> Result<(), Refusal> {
    let list = c
        .as_array()
        .ok_or_else(|| invalid("Param contacts must be an array."))?;
    if list.is_empty() || list.len() > CONTACTS {
        return Err(invalid(format!(
            "Param contacts must have 1 to {CONTACTS} entries; it has {}.",
            list.len()
        )));
    }
    for (i, contact) in list.iter().enumerate() {
        required_text(
            contact,
            &["name", "formatted_name"],
            &format!("contacts[{i}]['name']['formatted_name']"),
            512,
        )?;
    }
    Ok(())
}

fn header(i: &Value, text_only: bool) -> Result<(), Refusal> {
    let Some(h) = i.get("header") else {
        return Ok(());
    };
    match h.get("type").and_then(Value::as_str) {
        Some("text") => required_text(h, &["text"], "interactive['header']['text']", HEADER_FOOTER),
        Some(m @ ("image" | "video" | "document")) if !text_only => media(m, h.get(m)),
        Some(other) => Err(invalid(format!(
            "Header type '{other}' is not allowed for this interactive message."
        ))),
        None => Err(missing("interactive['header']['type']")),
    }
}

fn interactive(i: &Value) -> Result<(), Refusal> {
    let itype = str_at(i, &["type"]).ok_or_else(|| missing("interactive['type']"))?;
    optional_text(
        i,
        &["footer", "text"],
        "interactive['footer']['text']",
        HEADER_FOOTER,
    )?;
    let action = || {
        i.get("action")
            .ok_or_else(|| missing("interactive['action']"))
    };
    match itype {
        "button" => {
            required_text(
                i,
                &["body", "text"],
                "interactive['body']['text']",
                INTERACTIVE_BODY,
            )?;
            header(i, false)?;
            let buttons = action()?
                .get("buttons")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("interactive['action']['buttons']"))?;
            if buttons.is_empty() || buttons.len() > 3 {
                return Err(invalid(format!(
                    "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3; got {}.",
                    buttons.len()
                )));
            }
            let (mut ids, mut titles) = (Vec::new(), Vec::new());
            for (n, b) in buttons.iter().enumerate() {
                if str_at(b, &["type"]) != Some("reply") {
                    return Err(invalid(format!("buttons[{n}]['type'] must be 'reply'.")));
                }
                required_text(
                    b,
                    &["reply", "id"],
                    &format!("buttons[{n}]['reply']['id']"),
                    BUTTON_ID,
                )?;
                required_text(
                    b,
                    &["reply", "title"],
                    &format!("buttons[{n}]['reply']['title']"),
                    BUTTON_TITLE,
                )?;
                ids.push(str_at(b, &["reply", "id"]));
                titles.push(str_at(b, &["reply", "title"]));
            }
            if has_duplicates(&ids) || has_duplicates(&titles) {
                return Err(invalid("Button ids and titles must be unique."));
            }
            Ok(())
        }
        "list" => {
            required_text(
                i,
                &["body", "text"],
                "interactive['body']['text']",
                TEXT_BODY,
            )?;
            header(i, true)?;
            let a = action()?;
            required_text(
                a,
                &["button"],
                "interactive['action']['button']",
                BUTTON_TITLE,
            )?;
            let sections = a
                .get("sections")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("interactive['action']['sections']"))?;
            if sections.is_empty() || sections.len() > LIST_SECTIONS {
                return Err(invalid(format!(
                    "A list needs 1 to {LIST_SECTIONS} sections; it has {}.",
                    sections.len()
                )));
            }
            let mut ids = Vec::new();
            for (n, s) in sections.iter().enumerate() {
                if sections.len() > 1 {
                    required_text(s, &["title"], &format!("sections[{n}]['title']"), ROW_TITLE)?;
                } else {
                    optional_text(s, &["title"], &format!("sections[{n}]['title']"), ROW_TITLE)?;
                }
                let rows = s
                    .get("rows")
                    .and_then(Value::as_array)
                    .ok_or_else(|| missing(&format!("sections[{n}]['rows']")))?;
                for (r, row) in rows.iter().enumerate() {
                    required_text(
                        row,
                        &["id"],
                        &format!("sections[{n}]['rows'][{r}]['id']"),
                        ROW_ID,
                    )?;
                    required_text(
                        row,
                        &["title"],
                        &format!("sections[{n}]['rows'][{r}]['title']"),
                        ROW_TITLE,
                    )?;
                    optional_text(
                        row,
                        &["description"],
                        &format!("sections[{n}]['rows'][{r}]['description']"),
                        ROW_DESCRIPTION,
                    )?;
                    ids.push(str_at(row, &["id"]));
                }
            }
            if ids.is_empty() || ids.len() > LIST_ROWS {
                return Err(invalid(format!(
                    "Invalid number of rows: a list allows 1 to {LIST_ROWS} rows in total; it has {}.",
                    ids.len()
                )));
            }
            if has_duplicates(&ids) {
                return Err(invalid("Row ids must be unique across sections."));
            }
            Ok(())
        }
        "cta_url" => {
            required_text(
                i,
                &["body", "text"],
                "interactive['body']['text']",
                INTERACTIVE_BODY,
            )?;
            header(i, false)?;
            let a = action()?;
            if str_at(a, &["name"]) != Some("cta_url") {
                return Err(invalid("interactive['action']['name'] must be 'cta_url'."));
            }
            required_text(
                a,
                &["parameters", "display_text"],
                "interactive['action']['parameters']['display_text']",
                BUTTON_TITLE,
            )?;
            let url = str_at(a, &["parameters", "url"])
                .ok_or_else(|| missing("interactive['action']['parameters']['url']"))?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(
                    "interactive['action']['parameters']['url'] must be an http or https URL.",
                ));
            }
            Ok(())
        }
        "product" => {
            if i.get("header").is_some() {
                return Err(invalid("A single-product message has no header."));
            }
            let a = action()?;
            str_at(a, &["catalog_id"])
                .ok_or_else(|| missing("interactive['action']['catalog_id']"))?;
            str_at(a, &["product_retailer_id"])
                .ok_or_else(|| missing("interactive['action']['product_retailer_id']"))?;
            Ok(())
        }
        "product_list" => {
            required_text(
                i,
                &["header", "text"],
                "interactive['header']['text']",
                HEADER_FOOTER,
            )?;
            required_text(
                i,
                &["body", "text"],
                "interactive['body']['text']",
                INTERACTIVE_BODY,
            )?;
            let a = action()?;
            str_at(a, &["catalog_id"])
                .ok_or_else(|| missing("interactive['action']['catalog_id']"))?;
            let sections = a
                .get("sections")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("interactive['action']['sections']"))?;
            let items: usize = sections
                .iter()
                .filter_map(|s| s.get("product_items").and_then(Value::as_array))
                .map(Vec::len)
                .sum();
            if sections.is_empty()
                || sections.len() > LIST_SECTIONS
                || items == 0
                || items > PRODUCTS
            {
                return Err(invalid(format!(
                    "A product list needs 1 to {LIST_SECTIONS} sections and 1 to {PRODUCTS} products; it has {} and {items}.",
                    sections.len()
                )));
            }
            Ok(())
        }
        "call_permission_request" => {
            if i.get("header").is_some() || i.get("footer").is_some() {
                return Err(invalid(
                    "A call permission request has no header or footer.",
                ));
            }
            if str_at(action()?, &["name"]) != Some("call_permission_request") {
                return Err(invalid(
                    "interactive['action']['name'] must be 'call_permission_request'.",
                ));
            }
            optional_text(
                i,
                &["body", "text"],
                "interactive['body']['text']",
                INTERACTIVE_BODY,
            )
        }
        "flow" | "location_request_message" | "voice_call" | "catalog_message" => {
            action()?;
            optional_text(
                i,
                &["body", "text"],
                "interactive['body']['text']",
                INTERACTIVE_BODY,
            )
        }
        other => Err(Refusal::new(
            131009,
            "Parameter value is not valid",
            format!("Interactive type '{other}' is not supported."),
        )),
    }
}

fn has_duplicates(values: &[Option<&str>]) -> bool {
    let mut seen = std::collections::HashSet::new();
    values.iter().any(|v| !seen.insert(*v))
}

/// Template checks: exists in the language and approved (132001), parameter count (132000),
/// named vs positional (132012). Returns the template's pricing category.
fn template(waba: &str, templates: &[Template], req: &Value) -> Result<String, Refusal> {
    let name = str_at(req, &["template", "name"]).ok_or_else(|| missing("template['name']"))?;
    let lang = str_at(req, &["template", "language", "code"])
        .ok_or_else(|| missing("template['language']['code']"))?;
    let tpl = templates
        .iter()
        .find(|t| t.waba_id == waba && t.name == name && t.language == lang)
        .filter(|t| t.status == "APPROVED")
        .ok_or_else(|| {
            Refusal::new(
                132001,
                "Template name does not exist in the translation",
                format!("template name ({name}) does not exist in {lang}"),
            )
        })?;
    let components: Vec<&Value> = req["template"]
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let params_of = |kind: &str| -> Vec<&Value> {
        components
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            .filter_map(|c| c.get("parameters").and_then(Value::as_array))
            .flatten()
            .collect()
    };
    let count_mismatch = |part: &str, sent: usize, expected: usize| {
        Refusal::new(
            132000,
            "Number of parameters does not match the expected number of params",
            format!(
                "{part}: number of localizable_params ({sent}) does not match the expected number of params ({expected})"
            ),
        )
    };
    // Header: a text header's placeholders, or exactly one media/location parameter.
    let header = params_of("header");
    match tpl.header_format().as_deref() {
        Some("TEXT") | None => {
            let expected = tpl.header_params().len();
            if header.len() != expected {
                return Err(count_mismatch("header", header.len(), expected));
            }
        }
        Some(format) => {
            let want = format.to_ascii_lowercase();
            if header.len() != 1 {
                return Err(count_mismatch("header", header.len(), 1));
            }
            let given = header[0].get("type").and_then(Value::as_str).unwrap_or("");
            if given != want || header[0].get(&want).is_none() {
                return Err(Refusal::new(
                    132012,
                    "Parameter format does not match format in the created template",
                    format!(
                        "header: Format mismatch, expected {format}, received {}",
                        given.to_ascii_uppercase()
                    ),
                ));
            }
        }
    }
    let body_params = params_of("body");
    let expected = tpl.body_params();
    if body_params.len() != expected.len() {
        return Err(count_mismatch("body", body_params.len(), expected.len()));
    }
    let named = tpl.is_named();
    for (p, want) in body_params.iter().zip(&expected) {
        let given = p.get("parameter_name").and_then(Value::as_str);
        let ok = match (named, given) {
            (true, Some(g)) => expected.iter().any(|e| e == g),
            (false, None) => true,
            _ => false,
        };
        if !ok {
            let hint = if named {
                format!("expected a parameter_name such as '{want}'")
            } else {
                "this template takes positional parameters without parameter_name".to_string()
            };
            return Err(Refusal::new(
                132012,
                "Parameter format does not match format in the created template",
                format!("body: {hint}"),
            ));
        }
        if p.get("type").and_then(Value::as_str) == Some("text")
            && str_at(p, &["text"]).is_none_or(str::is_empty)
        {
            return Err(count_mismatch(
                "body",
                body_params.len() - 1,
                expected.len(),
            ));
        }
    }
    // URL buttons with a variable suffix need their `text` parameter.
    for index in tpl.dynamic_url_buttons() {
        let given = components.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("button")
                && c.get("sub_type").and_then(Value::as_str) == Some("url")
                && c.get("index").is_some_and(|i| {
                    i.as_u64() == Some(index as u64) || i.as_str() == Some(&index.to_string())
                })
                && c.get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| p.len() == 1)
        });
        if !given {
            return Err(count_mismatch(&format!("button at index {index}"), 0, 1));
        }
    }
    Ok(tpl.category.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
