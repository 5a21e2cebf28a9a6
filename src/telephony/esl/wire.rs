//! The FreeSWITCH event-socket wire format.
//!
//! Every message is a block of `Header: value` lines ended by an empty line; when it has a
//! `Content-Length`, exactly that many body bytes follow. `Content-Type` says what it is:
//! `auth/request` (log in, please), `command/reply` (`Reply-Text: +OK …`/`-ERR …`),
//! `api/response`, `text/event-plain` (an event), `text/disconnect-notice` (going away).
//!
//! The body of a `text/event-plain` message is itself a header block whose values are
//! URL-encoded (`Caller-Caller-ID-Number: %2B14155550123`), parsed by [`parse_event`].
//!
//! [`Decoder`] is pure and size-limited like the AMI one. FreeSWITCH writes `\n`; `\r\n` is
//! accepted too. Framing errors are fatal for the connection: after a bad `Content-Length`
//! there is no way to find the next message boundary.

/// The largest header block accepted.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The largest body accepted. A CHANNEL_HANGUP_COMPLETE with every channel variable is
/// 10–30 KiB; 1 MiB leaves room for long SIP headers and JSON variables.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One event-socket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The exact bytes: header block and body.
    pub raw: Vec<u8>,
}

impl Message {
    /// The first value of `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        find(&self.headers, key)
    }

    pub fn content_type(&self) -> &str {
        self.get("Content-Type").unwrap_or("")
    }
}

/// The stream cannot be used as an event socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("an event-socket header block exceeded {MAX_HEADER_BYTES} bytes")]
    HeadersTooLarge,
    #[error("Content-Length {0} exceeds the {MAX_BODY_BYTES}-byte limit")]
    BodyTooLarge(usize),
    #[error("Content-Length '{0}' is not a number")]
    BadContentLength(String),
}

/// Incremental framing of one connection.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        loop {
            // Stray blank lines between messages carry nothing.
            let blank = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            self.buf.drain(..blank);
            let Some(head_end) = header_end(&self.buf) else {
                if self.buf.len() > MAX_HEADER_BYTES {
                    return Err(WireError::HeadersTooLarge);
                }
                return Ok(None);
            };
            if head_end > MAX_HEADER_BYTES {
                return Err(WireError::HeadersTooLarge);
            }
            let headers = parse_lines(self.buf.get(..head_end).unwrap_or_default(), false);
            let length = match find(&headers, "Content-Length") {
                None => 0,
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| WireError::BadContentLength(v.chars().take(20).collect()))?,
            };
            if length > MAX_BODY_BYTES {
                return Err(WireError::BodyTooLarge(length));
            }
            let total = head_end + length;
            if self.buf.len() < total {
                return Ok(None);
            }
            let raw: Vec<u8> = self.buf.drain(..total).collect();
            if headers.is_empty() {
                continue;
            }
            let body = raw.get(head_end..).unwrap_or_default().to_vec();
            return Ok(Some(Message { headers, body, raw }));
        }
    }
}

/// An event's headers, URL-decoded, in order. Anything after the event's own empty line
/// (the body of a MESSAGE or a `bgapi` result) is not needed and is dropped.
pub fn parse_event(body: &[u8]) -> Vec<(String, String)> {
    let end = header_end(body).unwrap_or(body.len());
    parse_lines(body.get(..end).unwrap_or_default(), true)
}

/// The first value of `key` (case-insensitive) in a header list.
pub fn find<'a>(headers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Index just past the first empty line (`\n\n` or `\r\n\r\n`, mixed allowed).
fn header_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = buf.get(line_start..i).unwrap_or_default();
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

fn parse_lines(block: &[u8], url_encoded: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (k, v) = line.split_at(colon);
        let v = v.get(1..).unwrap_or_default();
        let v = v.strip_prefix(b" ").unwrap_or(v);
        let key = String::from_utf8_lossy(k).trim().to_string();
        if key.is_empty() {
            continue;
        }
        let value = if url_encoded {
            String::from_utf8_lossy(&percent_decode(v)).into_owned()
        } else {
            String::from_utf8_lossy(v).into_owned()
        };
        out.push((key, value));
    }
    out
}

/// `%XX` → byte. Unlike form decoding, `+` stays `+`: FreeSWITCH's `switch_url_encode`
/// escapes `+` itself, and a caller id like `+14155550123` sent unescaped must survive.
/// A malformed escape is kept literally.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            let hex = |o: usize| input.get(i + o).and_then(|c| (*c as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(1), hex(2)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// A command as the event socket expects it: the line and an empty line.
pub fn command(line: &str) -> Vec<u8> {
    let clean: String = line.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    format!("{clean}\n\n").into_bytes()
}

#[cfg(test)]
mod tests;
