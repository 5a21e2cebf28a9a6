//! SIP messages on the wire (RFC 3261 §7, §20): a small, defensive parser and the serializer
//! for the responses the UAS sends.
//!
//! Only what a never-answering UAS needs is interpreted: the start line, header lines (with
//! folding and compact names), `Content-Length` framing, `Via` lists and name-addr values.
//! Everything else is kept as text. Nothing here panics on any input: every index is
//! checked, and the tests feed it arbitrary bytes.

use std::fmt::Write as _;

/// Largest message accepted, in bytes: a UDP datagram's maximum payload, which also bounds
/// what one TCP message may buffer.
pub const MAX_MESSAGE_BYTES: usize = 65_535;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// One header line, unfolded. `name` is the full form even when the wire used the compact
/// one (`v` → `Via`), so lookups need only one spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A parsed request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// Why bytes are not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("no blank line ends the header section")]
    NoHeaderEnd,
    #[error("the header section is not UTF-8")]
    NotUtf8,
    #[error("start line is neither a SIP/2.0 request nor a response: {0:?}")]
    StartLine(String),
    #[error("header line without a name and colon: {0:?}")]
    HeaderLine(String),
    #[error("Content-Length {0:?} is not a number")]
    BadContentLength(String),
    #[error("Content-Length is {declared} but only {available} body bytes arrived")]
    ShortBody { declared: usize, available: usize },
    #[error("Content-Length is mandatory on a stream transport (RFC 3261 §18.3)")]
    MissingContentLength,
}

/// Compact header names (RFC 3261 §7.3.3 and extensions) and their full forms.
const COMPACT: &[(&str, &str)] = &[
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("e", "Content-Encoding"),
    ("k", "Supported"),
    ("s", "Subject"),
];

impl Message {
    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI, or `None` for a response.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first header called `name` (full form, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every header called `name` (full form, any case), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every `Via` value in order, whether they came as one comma-separated header or several.
    pub fn vias(&self) -> Vec<&str> {
        self.headers_named("Via").flat_map(split_list).collect()
    }

    /// The message as bytes. `Content-Length` is written as the headers hold it; the
    /// builders below always set it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for h in &self.headers {
            let _ = write!(out, "{}: {}\r\n", h.name, h.value);
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Parses one datagram (UDP): the whole buffer is one message. Without `Content-Length` the
/// body is the rest of the datagram (RFC 3261 §18.3); with it, bytes beyond it are ignored.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge);
    }
    let bytes = skip_leading_newlines(bytes);
    let (head_len, sep) = find_head_end(bytes).ok_or(ParseError::NoHeaderEnd)?;
    let (start, headers) = parse_head(head(bytes, head_len)?)?;
    let rest = bytes.get(head_len + sep..).unwrap_or_default();
    let body = match content_length(&headers)? {
        Some(n) if n > rest.len() => {
            return Err(ParseError::ShortBody {
                declared: n,
                available: rest.len(),
            });
        }
        Some(n) => rest.get(..n).unwrap_or_default().to_vec(),
        None => rest.to_vec(),
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

/// Parses the next message from a stream (TCP) buffer. `Ok(None)`: more bytes are needed.
/// `Ok(Some((message, used)))`: `used` bytes (including keep-alive blank lines before it)
/// belong to it. An error means the stream cannot be resynchronised and should be closed.
pub fn parse_stream(buf: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
    let skipped = buf.len() - skip_leading_newlines(buf).len();
    let bytes = buf.get(skipped..).unwrap_or_default();
    let Some((head_len, sep)) = find_head_end(bytes) else {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let (start, headers) = parse_head(head(bytes, head_len)?)?;
    let len = content_length(&headers)?.ok_or(ParseError::MissingContentLength)?;
    // Content-Length is the peer's number: saturate so a huge one is "too large", not an
    // overflow.
    let total = head_len.saturating_add(sep).saturating_add(len);
    if total > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge);
    }
    let Some(body) = bytes.get(head_len + sep..total) else {
        return Ok(None);
    };
    let message = Message {
        start,
        headers,
        body: body.to_vec(),
    };
    Ok(Some((message, skipped + total)))
}

/// RFC 3261 §7.5: CRLFs before a start line are ignored (also used as keep-alives).
fn skip_leading_newlines(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    bytes.get(n..).unwrap_or_default()
}

/// Length of the header section and of the blank-line separator after it. Bare LF line ends
/// are accepted too (some test tools send them).
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((l, 2)),
        (Some(c), _) => Some((c, 4)),
        (None, Some(l)) => Some((l, 2)),
        (None, None) => None,
    }
}

fn head(bytes: &[u8], len: usize) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes.get(..len).unwrap_or_default()).map_err(|_| ParseError::NotUtf8)
}

fn parse_head(head: &str) -> Result<(StartLine, Vec<Header>), ParseError> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let start = parse_start_line(first)?;
    let mut headers: Vec<Header> = Vec::with_capacity(12);
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folding (RFC 3261 §7.3.1): a continuation line joins the previous value.
            let Some(last) = headers.last_mut() else {
                return Err(ParseError::HeaderLine(shorten(line)));
            };
            last.value.push(' ');
            last.value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::HeaderLine(shorten(line)));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::HeaderLine(shorten(line)));
        }
        let name = COMPACT
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(name))
            .map_or(name, |(_, full)| full);
        headers.push(Header {
            name: name.to_string(),
            value: value.trim().to_string(),
        });
    }
    Ok((start, headers))
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(shorten(line));
    if let Some(rest) = strip_prefix_ignore_case(line, "SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code
            .parse()
            .ok()
            .filter(|c| (100..700).contains(c))
            .ok_or_else(bad)?;
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") || !method.bytes().all(is_token_byte) {
        return Err(bad());
    }
    if !uri.contains(':') {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: method.to_string(),
        uri: uri.to_string(),
    })
}

fn content_length(headers: &[Header]) -> Result<Option<usize>, ParseError> {
    let Some(h) = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    else {
        return Ok(None);
    };
    h.value
        .parse::<usize>()
        .map(Some)
        .map_err(|_| ParseError::BadContentLength(shorten(&h.value)))
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// At most 80 characters of untrusted text, for error messages.
fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Splits a header value at commas that are not inside quotes or `<...>` (RFC 3261 §7.3.1).
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut from) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value.get(from..i).unwrap_or_default());
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value.get(from..).unwrap_or_default());
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

/// One `Via` value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    pub transport: &'a str,
    pub sent_by: &'a str,
    pub params: &'a str,
}

impl<'a> Via<'a> {
    /// Reads a Via value; `None` when it is not `SIP/2.0/<transport> <sent-by>`.
    pub fn parse(value: &'a str) -> Option<Via<'a>> {
        let (proto_and_host, params) = value.split_once(';').unwrap_or((value, ""));
        let (protocol, sent_by) = proto_and_host.trim().rsplit_once([' ', '\t'])?;
        // LWS is allowed around the slashes of the protocol (`SIP / 2.0 / UDP`).
        let joined: String = protocol.split_ascii_whitespace().collect();
        let (_, transport) = protocol.rsplit_once('/')?;
        let transport = transport.trim();
        let valid = strip_prefix_ignore_case(&joined, "SIP/2.0/").is_some()
            && !transport.is_empty()
            && transport.bytes().all(is_token_byte)
            && !sent_by.is_empty();
        valid.then_some(Via {
            transport,
            sent_by,
            params,
        })
    }

    /// The `branch` parameter, if any.
    pub fn branch(&self) -> Option<&'a str> {
        param(self.params, "branch")
    }
}

/// A `name=value` parameter from a `;`-separated list (value `""` for a bare name).
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// A `From`/`To`/`P-Asserted-Identity`-style value split into its parts (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, unquoted; `None` when absent or empty.
    pub display: Option<String>,
    pub uri: &'a str,
    /// Header parameters after the address (`tag=...`, `party=calling`...), without the
    /// leading `;`.
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a str) -> NameAddr<'a> {
        let value = value.trim();
        if let Some(open) = find_unquoted(value, '<') {
            let after = value.get(open + 1..).unwrap_or_default();
            let (uri, rest) = after.split_once('>').unwrap_or((after, ""));
            let display = unquote(value.get(..open).unwrap_or_default());
            return NameAddr {
                display,
                uri: uri.trim(),
                params: rest.trim().trim_start_matches(';'),
            };
        }
        // addr-spec without brackets: parameters after the URI belong to the header.
        let (uri, params) = value.split_once(';').unwrap_or((value, ""));
        NameAddr {
            display: None,
            uri: uri.trim(),
            params,
        }
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        param(self.params, "tag").filter(|t| !t.is_empty())
    }
}

fn find_unquoted(s: &str, wanted: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == wanted && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s);
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// `CSeq: 1 INVITE` → (1, "INVITE").
pub fn cseq(value: &str) -> Option<(u32, &str)> {
    let mut words = value.split_ascii_whitespace();
    let number = words.next()?.parse().ok()?;
    let method = words.next()?;
    words.next().is_none().then_some((number, method))
}

/// The standard reason phrase of the codes the UAS sends.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        503 => "Service Unavailable",
        513 => "Message Too Large",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A response to `request` (RFC 3261 §8.2.6.2): every `Via` in order, `From`, `To` (with
/// `to_tag` added when the request's To has none), `Call-ID` and `CSeq` copied, then
/// `extra` headers and `Content-Length: 0`.
pub fn response(
    request_headers: &[Header],
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
) -> Message {
    let mut headers = Vec::with_capacity(8 + extra.len());
    for h in request_headers {
        let copy = ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n));
        if copy {
            headers.push(h.clone());
        } else if h.name.eq_ignore_ascii_case("To") {
            let mut value = h.value.clone();
            if let Some(tag) = to_tag
                && NameAddr::parse(&h.value).tag().is_none()
            {
                value.push_str(";tag=");
                value.push_str(tag);
            }
            headers.push(Header {
                name: "To".into(),
                value,
            });
        }
    }
    headers.extend(extra.iter().map(|(n, v)| Header {
        name: (*n).to_string(),
        value: (*v).to_string(),
    }));
    headers.push(Header {
        name: "Content-Length".into(),
        value: "0".into(),
    });
    Message {
        start: StartLine::Response {
            code,
            reason: reason.to_string(),
        },
        headers,
        body: Vec::new(),
    }
}

/// The headers a 400 needs, read line by line from bytes that did not parse as a message.
/// `None` when there is no readable `Via` (then nothing can be answered) or when the bytes
/// look like a response (a response is never answered).
pub fn salvage(bytes: &[u8]) -> Option<Vec<Header>> {
    let bytes = skip_leading_newlines(bytes.get(..MAX_MESSAGE_BYTES.min(bytes.len()))?);
    if bytes
        .get(..4)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"SIP/"))
    {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let mut headers = Vec::new();
    for line in text.lines().skip(1) {
        if line.trim().is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let Some((_, full)) = COMPACT
            .iter()
            .chain(
                [
                    ("", "Via"),
                    ("", "From"),
                    ("", "To"),
                    ("", "Call-ID"),
                    ("", "CSeq"),
                ]
                .iter(),
            )
            .find(|(short, full)| {
                short.eq_ignore_ascii_case(name) || full.eq_ignore_ascii_case(name)
            })
        else {
            continue;
        };
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(full) {
            headers.push(Header {
                name: (*full).to_string(),
                value: value.trim().to_string(),
            });
        }
    }
    let vias_ok = headers
        .iter()
        .filter(|h| h.name == "Via")
        .flat_map(|h| split_list(&h.value))
        .next()
        .is_some_and(|v| Via::parse(v).is_some());
    vias_ok.then_some(headers)
}

#[cfg(test)]
mod tests;
