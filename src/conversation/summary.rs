//! A readable line for any message, so a transcript reads as a dialogue whatever was sent:
//! media, locations, contacts, interactive messages, button replies and reactions each get a
//! bracketed label and their human parts (caption, name, title).

use serde_json::Value;

use crate::inbound::InboundMessage;

/// The text of a customer's message, or a summary of it.
pub fn inbound(m: &InboundMessage) -> String {
    let p = &m.payload;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let text = m.text.clone().unwrap_or_default();
    match m.message_type.as_str() {
        "text" => text,
        "image" | "video" | "audio" | "document" | "sticker" => {
            let part = &p[m.message_type.as_str()];
            let detail = [&part["caption"], &part["filename"]]
                .into_iter()
                .map(s)
                .find(|x| !x.is_empty())
                .unwrap_or_default();
            labelled(&m.message_type, &detail)
        }
        "location" => {
            let l = &p["location"];
            let place = [s(&l["name"]), s(&l["address"])]
                .into_iter()
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            let at = format!("{}, {}", l["latitude"], l["longitude"]);
            labelled(
                "location",
                &[place, at]
                    .iter()
                    .filter(|x| !x.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }
        "contacts" => {
            let people: Vec<String> = p["contacts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            let phone = s(&c["phones"][0]["phone"]);
                            format!("{} {phone}", s(&c["name"]["formatted_name"]))
                                .trim()
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default();
            labelled("contact", &people.join("; "))
        }
        "reaction" => {
            let emoji = s(&p["reaction"]["emoji"]);
            if emoji.is_empty() {
                "[reaction removed]".to_string()
            } else {
                format!("[reaction {emoji} to {}]", s(&p["reaction"]["message_id"]))
            }
        }
        "interactive" if p["interactive"]["type"] == "call_permission_reply" => {
            let answer = s(&p["interactive"]["call_permission_reply"]["response"]);
            labelled("call permission", &answer)
        }
        "interactive" | "button" => match &m.reply {
            Some(tap) => format!(
                "[{} \"{}\" ({})]",
                tap.kind.replace('_', " "),
                tap.title,
                tap.id
            ),
            // Ringback's parser already gave it a bracketed label.
            None if text.starts_with('[') => text,
            None => labelled(&m.message_type, &text),
        },
        other if !text.is_empty() => labelled(other, &text),
        other => labelled(other, ""),
    }
}

/// The text of one of our messages (the Cloud API request body), or a summary of it.
pub fn outbound(kind: &str, body: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match body["type"].as_str().unwrap_or(kind) {
        "text" => s(&body["text"]["body"]),
        "template" => {
            let t = &body["template"];
            let params: Vec<String> = t["components"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
                .map(|p| s(&p["text"]))
                .filter(|x| !x.is_empty())
                .collect();
            let name = format!("{} ({})", s(&t["name"]), s(&t["language"]["code"]));
            if params.is_empty() {
                labelled("template", &name)
            } else {
                labelled("template", &format!("{name}: {}", params.join(", ")))
            }
        }
        "interactive" => {
            let i = &body["interactive"];
            let options: Vec<String> = i["action"]["buttons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| s(&b["reply"]["title"]))
                .collect();
            let text = s(&i["body"]["text"]);
            if options.is_empty() {
                labelled("interactive", &text)
            } else {
                labelled("interactive", &format!("{text} — {}", options.join(" / ")))
            }
        }
        media @ ("image" | "video" | "audio" | "document" | "sticker") => {
            labelled(media, &s(&body[media]["caption"]))
        }
        "reaction" => format!("[reaction {}]", s(&body["reaction"]["emoji"])),
        other => labelled(other, ""),
    }
}

fn labelled(label: &str, detail: &str) -> String {
    if detail.is_empty() {
        format!("[{label}]")
    } else {
        format!("[{label}] {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(kind: &str, payload: Value, text: Option<&str>) -> InboundMessage {
        InboundMessage {
            phone_number_id: "pn".into(),
            wamid: "w".into(),
            from_wa_id: Some("1".into()),
            from_user_id: None,
            profile_name: None,
            timestamp: 0,
            message_type: kind.into(),
            text: text.map(Into::into),
            context_id: None,
            unknown_type: false,
            payload,
            reply: None,
        }
    }

    #[test]
    fn every_kind_of_customer_message_reads_as_a_line() {
        assert_eq!(inbound(&message("text", json!({}), Some("hi"))), "hi");
        assert_eq!(
            inbound(&message(
                "image",
                json!({"image": {"caption": "my car"}}),
                None
            )),
            "[image] my car"
        );
        assert_eq!(
            inbound(&message(
                "location",
                json!({"location": {"latitude": 52.5, "longitude": 13.4, "name": "Shop"}}),
                None
            )),
            "[location] Shop 52.5, 13.4"
        );
        assert_eq!(
            inbound(&message(
                "contacts",
                json!({"contacts": [{"name": {"formatted_name": "Ann"}, "phones": [{"phone": "+1 555"}]}]}),
                None
            )),
            "[contact] Ann +1 555"
        );
        assert_eq!(
            inbound(&message(
                "reaction",
                json!({"reaction": {"emoji": "👍", "message_id": "wamid.X"}}),
                None
            )),
            "[reaction 👍 to wamid.X]"
        );
    }

    #[test]
    fn every_kind_of_business_message_reads_as_a_line() {
        assert_eq!(
            outbound("text", &json!({"type": "text", "text": {"body": "Hello"}})),
            "Hello"
        );
        let t = json!({"type": "template", "template": {"name": "missed_call", "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}]}]}});
        assert_eq!(outbound("template", &t), "[template] missed_call (en): Ann");
        let i = json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Call back?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}, {"type": "reply", "reply": {"id": "n", "title": "No"}}]}}});
        assert_eq!(
            outbound("interactive", &i),
            "[interactive] Call back? — Yes / No"
        );
    }
}
