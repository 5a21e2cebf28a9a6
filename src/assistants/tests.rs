use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionResponseMessage,
    FunctionCall,
};

use super::answer::{self, Outcome};
use super::knowledge::{Knowledge, passages, terms};
use super::prompt::within_budget;
use crate::config::assistants::LongReplies;
use crate::store::AssistantTurn;

const FAQ: &str = "# Smile Dental\n\nWe are a family dental clinic in Leeds.\n\n\
## Opening hours\nMonday to Friday 8:00–18:00, Saturday 9:00–13:00. Closed on Sundays.\n\n\
## Prices\nA check-up costs £45. A scale and polish costs £60.\n\n\
## Parking\nFree parking behind the clinic.\n\n\
Q: Do you take NHS patients?\nA: Yes, we take NHS patients for routine care.\n";

#[test]
fn markdown_sections_and_qa_pairs_become_passages() {
    let p = passages(FAQ, "faq.md");
    let titles: Vec<&str> = p.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Smile Dental", "Opening hours", "Prices", "Parking"],
        "{p:#?}"
    );
    // The Q/A paragraph sits in the Parking section's body here (it has a heading); as plain
    // text it is its own entry.
    let plain = passages(
        "Q: Do you take NHS patients?\nA: Yes, for routine care.\n\nWe are in Leeds.",
        "faq.txt",
    );
    assert_eq!(plain[0].title, "Do you take NHS patients?");
    assert_eq!(plain[0].answer(), "Yes, for routine care.");
    assert_eq!(plain[1].title, "");
    assert_eq!(plain[1].answer(), "We are in Leeds.");
}

#[test]
fn retrieval_answers_what_the_knowledge_holds_with_confidence() {
    let k = Knowledge::from_passages(passages(FAQ, "faq.md"));
    let best = &k.search("What are your opening hours on Saturday?", 3)[0];
    assert_eq!(best.passage.title, "Opening hours");
    assert!(best.confidence > 0.9, "{}", best.confidence);
    let price = &k.search("how much is a check-up?", 1)[0];
    assert_eq!(price.passage.title, "Prices");
    // Nothing about bicycles: whatever is found shares few rare words.
    let off = k.search("Do you sell bicycles?", 1);
    assert!(off.is_empty() || off[0].confidence < 0.5, "{off:?}");
}

#[test]
fn plurals_and_stopwords_do_not_change_the_match() {
    assert_eq!(terms("What are the Prices?"), ["price"]);
    assert_eq!(terms("price"), ["price"]);
    assert_eq!(terms("glass"), ["glass"]);
}

#[test]
fn long_replies_split_on_sentences_or_trim() {
    let text = "One two three. Four five six! Seven eight nine? Ten.";
    assert_eq!(answer::fit(text, 100, LongReplies::Split), [text]);
    let parts = answer::fit(text, 30, LongReplies::Split);
    assert_eq!(
        parts,
        ["One two three. Four five six!", "Seven eight nine? Ten."]
    );
    assert!(parts.iter().all(|p| p.chars().count() <= 30));
    let trimmed = answer::fit(text, 30, LongReplies::Trim);
    assert_eq!(trimmed, ["One two three. Four five six!…"]);
    // A sentence longer than the limit is cut between words; nothing exceeds it.
    let long = "word ".repeat(2000);
    let parts = answer::fit(&long, 4096, LongReplies::Split);
    assert_eq!(parts.len(), 3);
    assert!(
        parts
            .iter()
            .all(|p| p.chars().count() <= 4096 && !p.is_empty())
    );
    let one = answer::fit(&"x".repeat(5000), 4096, LongReplies::Trim);
    assert_eq!(one[0].chars().count(), 4096);
}

#[test]
fn memory_keeps_the_newest_turns_within_the_budget() {
    let turns: Vec<AssistantTurn> = (0..10)
        .map(|i| AssistantTurn {
            role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
            content: format!("{i}").repeat(40), // 10 tokens + 4
            at: i,
        })
        .collect();
    let kept = within_budget(&turns, 50);
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0].at, 7);
    assert_eq!(within_budget(&turns, 10).len(), 0);
}

fn calls(list: &[(&str, &str)]) -> ChatCompletionResponseMessage {
    ChatCompletionResponseMessage {
        tool_calls: Some(
            list.iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: format!("call_{i}"),
                        function: FunctionCall {
                            name: (*name).into(),
                            arguments: (*args).into(),
                        },
                    })
                })
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn only_declared_tools_and_variables_act() {
    let vars = vec!["preferred_day".to_string()];
    // A model talked into calling something else: ignored, and with nothing else to say the
    // reading asks for a second round (the results tell the model the tool is unknown).
    let r = answer::read(
        &calls(&[
            ("send_money", "{\"to\":\"attacker\"}"),
            ("record_variable", "{\"name\":\"api_key\",\"value\":\"x\"}"),
        ]),
        &vars,
    );
    assert_eq!(r.outcome, None);
    assert!(r.recorded.is_empty());
    assert_eq!(r.ignored.len(), 2);
    let r = answer::read(
        &calls(&[(
            "record_variable",
            "{\"name\":\"preferred_day\",\"value\":\"Tuesday\"}",
        )]),
        &vars,
    );
    assert_eq!(
        r.recorded,
        [("preferred_day".to_string(), "Tuesday".to_string())]
    );
    // A hand-off wins over a callback; a malformed argument still hands off.
    let r = answer::read(
        &calls(&[
            ("request_callback", "{\"when\":\"tomorrow\"}"),
            ("hand_off", "not json"),
        ]),
        &vars,
    );
    assert!(matches!(r.outcome, Some(Outcome::HandOff { .. })));
    // Empty text and refusals are not replies.
    let empty = ChatCompletionResponseMessage {
        content: Some("  ".into()),
        ..Default::default()
    };
    assert!(matches!(
        answer::read(&empty, &vars).outcome,
        Some(Outcome::Nothing {
            code: "model_empty",
            ..
        })
    ));
    let refusal = ChatCompletionResponseMessage {
        refusal: Some("I can't help with that.".into()),
        ..Default::default()
    };
    assert!(matches!(
        answer::read(&refusal, &vars).outcome,
        Some(Outcome::Nothing {
            code: "model_refused",
            ..
        })
    ));
}

/// A model that takes 1.5 ms and answers "ok".
struct SlowByAMillisecondAndAHalf;

#[async_trait::async_trait]
impl super::provider::ModelProvider for SlowByAMillisecondAndAHalf {
    async fn complete(
        &self,
        _request: &async_openai::types::chat::CreateChatCompletionRequest,
        _timeout: std::time::Duration,
    ) -> Result<super::provider::Completion, super::provider::ProviderError> {
        std::thread::sleep(std::time::Duration::from_micros(1500));
        let response = serde_json::from_value(serde_json::json!({
            "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}]
        }))
        .expect("a valid completion");
        Ok(super::provider::Completion {
            response,
            cost: None,
        })
    }
}

#[tokio::test]
async fn the_models_time_is_counted_to_the_microsecond() {
    // Whole milliseconds counted 1.5 ms of the model as 1, and the other 0.5 ms as
    // Ringback's own overhead.
    let request = serde_json::from_value(serde_json::json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}]
    }))
    .expect("a valid request");
    let mut usage = super::Usage::default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    super::with_retries(&SlowByAMillisecondAndAHalf, &request, deadline, &mut usage)
        .await
        .expect("the model answers");
    assert_eq!(usage.requests, 1);
    assert!(
        usage.model_ms >= 1.5 && usage.model_ms < 1000.0,
        "model_ms = {}",
        usage.model_ms
    );
}
