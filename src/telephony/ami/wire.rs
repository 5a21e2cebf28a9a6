//! The AMI wire format: a banner line, then blocks of `Key: Value` lines ended by an empty line.
//!
//! [`Decoder`] is a pure framing buffer: feed it whatever the socket returned
//! ([`Decoder::push`]) and take complete frames out ([`Decoder::next_frame`]). It never looks
//! at the clock or the network, so it is tested with reads split at every byte.
//!
//! Asterisk writes `\r\n`; proxies and hand-written test peers sometimes write `\n`, so both
//! end a line. A block larger than the limit is refused once and then skipped up to its end,
//! so one giant event cannot grow memory without bound or desynchronise the stream.

/// The largest block accepted, in bytes. The biggest real AMI events (a `Cdr` with every
/// custom field, a `VarSet` of a long variable) are a few KiB.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024;

/// One AMI message: an event, a response to an action, or an action (in the test peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Header lines in order, as written (keys keep their case).
    pub headers: Vec<(String, String)>,
    /// The exact bytes of the block, including its terminating empty line.
    pub raw: Vec<u8>,
}

impl Message {
    /// The first value of `key`, compared case-insensitively (Asterisk itself is not
    /// consistent: `Cause-txt`, `Uniqueid`/`UniqueID`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// `Event: …` for an event.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    /// `Response: …` for an answer to an action.
    pub fn response(&self) -> Option<&str> {
        self.get("Response")
    }
}

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first line of a connection, e.g. `Asterisk Call Manager/5.0.1`; the version.
    Banner(String),
    Message(Message),
}

/// The stream cannot be used as AMI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The peer is not an Asterisk manager (wrong port, another protocol).
    #[error("expected the 'Asterisk Call Manager/<version>' banner, got '{0}'")]
    BadBanner(String),
    /// A block exceeded [`MAX_BLOCK_BYTES`]; it is skipped.
    #[error("an AMI block exceeded {MAX_BLOCK_BYTES} bytes and was skipped")]
    Oversized,
}

/// Incremental framing of one connection.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    banner_seen: bool,
    /// Inside an oversized block: drop bytes until its empty line.
    skipping: bool,
    /// Where the unfinished line in `buf` starts (everything before is scanned).
    scanned: usize,
    /// Whether a non-empty line was scanned in the current block.
    seen_content: bool,
}

impl Decoder {
    /// A decoder for a fresh connection: the first line must be the banner.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that expects no banner (the server side reading actions, in tests).
    pub fn without_banner() -> Self {
        Self {
            banner_seen: true,
            ..Self::default()
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if !self.banner_seen {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_BLOCK_BYTES {
                    return Err(WireError::BadBanner(lossy_prefix(&self.buf)));
                }
                return Ok(None);
            };
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(trim_line(&line)).into_owned();
            // The banner is "Asterisk Call Manager/x.y.z"; proxies (AstManProxy) and forks
            // keep the "Call Manager/" part.
            let Some((_, version)) = text.split_once("Call Manager/") else {
                return Err(WireError::BadBanner(text.chars().take(80).collect()));
            };
            self.banner_seen = true;
            self.scanned = 0;
            return Ok(Some(Frame::Banner(version.trim().to_string())));
        }
        loop {
            match self.block_end() {
                None => {
                    if self.buf.len() > MAX_BLOCK_BYTES {
                        let was_skipping = self.skipping;
                        self.discard_keep_tail();
                        self.skipping = true;
                        if !was_skipping {
                            return Err(WireError::Oversized);
                        }
                    }
                    return Ok(None);
                }
                Some(end) => {
                    let block: Vec<u8> = self.buf.drain(..end).collect();
                    if std::mem::take(&mut self.skipping) {
                        continue;
                    }
                    if block.len() > MAX_BLOCK_BYTES {
                        return Err(WireError::Oversized);
                    }
                    if let Some(message) = parse_block(block) {
                        return Ok(Some(Frame::Message(message)));
                    }
                    // Only blank lines: keep-alive noise between blocks.
                }
            }
        }
    }

    /// Index just past the empty line that ends the first block in `buf`, if complete.
    /// Leading blank lines belong to no block and end nothing. Scanning resumes where the
    /// last call stopped, so a block trickling in byte by byte costs linear time.
    fn block_end(&mut self) -> Option<usize> {
        let mut line_start = self.scanned.min(self.buf.len());
        let mut i = line_start;
        while let Some(&b) = self.buf.get(i) {
            if b == b'\n' {
                let line = trim_line(self.buf.get(line_start..=i).unwrap_or_default());
                if line.is_empty() {
                    if self.seen_content {
                        self.scanned = 0;
                        self.seen_content = false;
                        return Some(i + 1);
                    }
                } else {
                    self.seen_content = true;
                }
                line_start = i + 1;
            }
            i += 1;
        }
        self.scanned = line_start;
        None
    }

    /// Drops the buffered part of an oversized block, keeping a short tail in case the
    /// terminating empty line is split across reads.
    fn discard_keep_tail(&mut self) {
        let keep = self.buf.len().min(4);
        let cut = self.buf.len() - keep;
        self.buf.drain(..cut);
        self.scanned = 0;
        self.seen_content = false;
    }
}

/// `Key: Value` lines → a message. Lines without a colon (free text of a `Command`
/// response) are kept in `raw` but not as headers; a block with no header is `None`.
fn parse_block(block: Vec<u8>) -> Option<Message> {
    let mut headers = Vec::new();
    for line in block.split(|&b| b == b'\n') {
        let line = trim_line(line);
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        if let Some((k, v)) = text.split_once(':') {
            let key = k.trim();
            if !key.is_empty() {
                headers.push((key.to_string(), v.trim().to_string()));
            }
        }
    }
    (!headers.is_empty()).then_some(Message {
        headers,
        raw: block,
    })
}

/// A line without its `\n` and optional `\r`.
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn lossy_prefix(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

/// Writes an action (or, in the test peer, a response/event) in AMI's wire form.
pub fn encode(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in headers {
        // A CR or LF inside a value would end the line early and let a value inject
        // headers; configured secrets are validated, but be safe here too.
        let clean: String = v.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(clean.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests;
