//! An assistant's knowledge: its files cut into passages, and retrieval over them.
//!
//! A passage is a Markdown section (its heading is the title, the text under it the body), a
//! `Q: … A: …` pair, or a paragraph of a plain-text file. Retrieval ranks passages by BM25
//! (the ranking function of Lucene and most search engines) over an inverted index, and
//! reports a confidence that a person can reason about: the share of the question's words,
//! weighted by how rare they are in the knowledge, that the passage contains. "Do you sell
//! bicycles?" against a dental clinic's FAQ finds "sell" and "bicycles" nowhere, so even
//! the best passage has a low confidence and the built-in assistant hands off instead of
//! guessing.
//!
//! Written here rather than taken from a crate: the scoring is forty lines, and the parts that
//! matter (what a passage is, what confidence means) are Ringback's own.

use std::collections::HashMap;

use crate::config::assistants::KnowledgeFile;

/// One passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The section heading or question; empty for a plain paragraph.
    pub title: String,
    pub body: String,
    /// The file it came from.
    pub source: String,
}

impl Passage {
    /// What the built-in assistant answers with: the body, or the title when the section has
    /// no body.
    pub fn answer(&self) -> &str {
        if self.body.is_empty() {
            &self.title
        } else {
            &self.body
        }
    }

    /// The passage as given to a model.
    pub fn as_prompt(&self) -> String {
        if self.title.is_empty() {
            self.body.clone()
        } else {
            format!("{}\n{}", self.title, self.body)
        }
    }
}

/// A passage found for a question.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'a> {
    pub passage: &'a Passage,
    /// BM25 score: orders the passages.
    pub score: f64,
    /// 0–1: the rarity-weighted share of the question's words in the passage.
    pub confidence: f64,
}

/// The passages of every knowledge file and their index.
#[derive(Debug, Default)]
pub struct Knowledge {
    passages: Vec<Passage>,
    /// term → (passage, term frequency).
    postings: HashMap<String, Vec<(u32, u32)>>,
    /// Terms per passage.
    lengths: Vec<u32>,
    average_length: f64,
}

/// Sections longer than this are cut into their paragraphs (each keeping the heading).
const LONG_SECTION_CHARS: usize = 1500;

const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "do", "does",
    "for", "from", "get", "have", "hello", "hi", "how", "i", "if", "in", "is", "it", "me", "my",
    "of", "on", "or", "our", "please", "so", "that", "the", "there", "this", "to", "we", "what",
    "when", "where", "which", "who", "will", "with", "would", "you", "your",
];

/// Lower-cased words, stopwords dropped, a plural `s` and an `-ing` taken off ("parking" and
/// "park", "prices" and "price" match).
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() > 1 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w).to_string())
        .collect()
}

fn stem(w: &str) -> &str {
    if w.len() > 5 && w.is_ascii() && w.ends_with("ing") {
        &w[..w.len() - 3]
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        &w[..w.len() - 1]
    } else {
        w
    }
}

/// A hard-wrapped Markdown paragraph as one line (a WhatsApp message wraps by itself); list
/// items, table rows and blank lines keep their breaks.
fn unwrap_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous_blank = true;
    for line in text.lines().map(str::trim_end) {
        let t = line.trim_start();
        let starts_block = t.is_empty()
            || t.starts_with(['-', '*', '|', '>'])
            || t.split_once(". ")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
        if out.is_empty() {
        } else if previous_blank || starts_block {
            out.push('\n');
        } else {
            out.push(' ');
        }
        out.push_str(if t.is_empty() { "" } else { line.trim() });
        previous_blank = t.is_empty();
    }
    out.trim().to_string()
}

impl Knowledge {
    pub fn from_files(files: &[KnowledgeFile]) -> Self {
        let passages = files
            .iter()
            .flat_map(|f| passages(&f.text, &f.path.display().to_string()))
            .collect();
        Self::from_passages(passages)
    }

    pub fn from_passages(passages: Vec<Passage>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lengths = Vec::with_capacity(passages.len());
        for (i, p) in passages.iter().enumerate() {
            // The title counts twice: a question's words are best matched by the heading
            // that names its subject.
            let mut words = terms(&p.title);
            words.extend(terms(&p.title));
            words.extend(terms(&p.body));
            lengths.push(words.len() as u32);
            let mut counts: HashMap<String, u32> = HashMap::new();
            for w in words {
                *counts.entry(w).or_default() += 1;
            }
            for (w, n) in counts {
                postings.entry(w).or_default().push((i as u32, n));
            }
        }
        let average_length = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().map(|&l| f64::from(l)).sum::<f64>() / lengths.len() as f64
        };
        Self {
            passages,
            postings,
            lengths,
            average_length,
        }
    }

    pub fn passages(&self) -> &[Passage] {
        &self.passages
    }

    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    /// Every passage's text, joined: how large the knowledge is in a prompt.
    pub fn total_chars(&self) -> usize {
        self.passages
            .iter()
            .map(|p| p.title.len() + p.body.len() + 1)
            .sum()
    }

    /// BM25's inverse document frequency; a word found nowhere weighs most.
    fn idf(&self, term: &str) -> f64 {
        let n = self.passages.len() as f64;
        let df = self.postings.get(term).map_or(0, Vec::len) as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The best `limit` passages for `question`, best first (only passages sharing a word
    /// with it).
    pub fn search(&self, question: &str, limit: usize) -> Vec<Found<'_>> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let mut query = terms(question);
        query.sort();
        query.dedup();
        let weights: Vec<f64> = query.iter().map(|t| self.idf(t)).collect();
        let total: f64 = weights.iter().sum();
        if total == 0.0 {
            return Vec::new();
        }
        // passage → (score, matched weight)
        let mut hits: HashMap<u32, (f64, f64)> = HashMap::new();
        for (term, idf) in query.iter().zip(&weights) {
            for &(p, tf) in self.postings.get(term).map_or(&[][..], Vec::as_slice) {
                let tf = f64::from(tf);
                let len = f64::from(self.lengths[p as usize]);
                let norm = K1 * (1.0 - B + B * len / self.average_length.max(1.0));
                let hit = hits.entry(p).or_default();
                hit.0 += idf * tf * (K1 + 1.0) / (tf + norm);
                hit.1 += idf;
            }
        }
        let mut found: Vec<Found<'_>> = hits
            .into_iter()
            .map(|(p, (score, matched))| Found {
                passage: &self.passages[p as usize],
                score,
                confidence: (matched / total).min(1.0),
            })
            .collect();
        found.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.confidence.total_cmp(&a.confidence))
        });
        found.truncate(limit);
        found
    }
}

/// Cuts one file's text into passages.
pub fn passages(text: &str, source: &str) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut title = String::new();
    let mut body: Vec<&str> = Vec::new();
    let flush = |title: &str, body: &mut Vec<&str>, out: &mut Vec<Passage>| {
        let text = body.join("\n");
        body.clear();
        section(title, text.trim(), source, out);
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(heading) = heading(trimmed) {
            flush(&title, &mut body, &mut out);
            title = heading.to_string();
        } else {
            body.push(line);
        }
    }
    flush(&title, &mut body, &mut out);
    out
}

/// `## Opening hours` → `Opening hours`.
fn heading(line: &str) -> Option<&str> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&level) && line[level..].starts_with(' ') {
        Some(line[level..].trim())
    } else {
        None
    }
}

fn section(title: &str, body: &str, source: &str, out: &mut Vec<Passage>) {
    if title.is_empty() || body.chars().count() > LONG_SECTION_CHARS {
        // No heading (plain text, or text before the first heading), or too long to answer
        // with whole: each paragraph is a passage; `Q: … A: …` paragraphs are FAQ entries.
        for para in body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            out.push(match qa(para) {
                Some((q, a)) => Passage {
                    title: q,
                    body: a,
                    source: source.into(),
                },
                None => Passage {
                    title: title.into(),
                    body: unwrap_lines(para),
                    source: source.into(),
                },
            });
        }
    } else if !body.is_empty() || !title.is_empty() {
        out.push(Passage {
            title: title.into(),
            body: unwrap_lines(body),
            source: source.into(),
        });
    }
}

/// `Q: question\nA: answer` → (question, answer).
fn qa(para: &str) -> Option<(String, String)> {
    let rest = para
        .strip_prefix("Q:")
        .or_else(|| para.strip_prefix("Q."))?;
    let (q, a) = rest.split_once("\nA:")?;
    Some((q.trim().to_string(), unwrap_lines(a)))
}
