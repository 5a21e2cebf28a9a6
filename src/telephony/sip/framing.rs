//! Framing SIP messages out of a TCP byte stream, with keep-alives and a memory bound.
//!
//! RFC 5626 §3.5.1 keeps flows open with a "ping" of a double CRLF, which the server answers
//! with a "pong" of a single CRLF (§4.4.1); RFC 3261 §7.5 also lets CRLFs precede any
//! message. Such bytes are consumed here as they arrive, so a peer sending nothing but
//! CRLFs cannot make the buffer grow, and the buffer is capped per connection whatever the
//! peer sends (a message is at most [`MAX_MESSAGE_BYTES`], plus one read of the next one).

use super::message::{self, MAX_MESSAGE_BYTES, Message, ParseError};

/// Bytes one connection may hold unparsed: the largest message plus one read.
pub const MAX_BUFFERED: usize = MAX_MESSAGE_BYTES + 16 * 1024;

/// The RFC 5626 keep-alive request.
const PING: &[u8] = b"\r\n\r\n";
/// The answer to it.
pub const PONG: &[u8] = b"\r\n";

/// What the stream held next.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A whole message, and the bytes it came in (for audit).
    Message(Message, Vec<u8>),
    /// One or more double-CRLF keep-alives; answer once with [`PONG`].
    Ping,
}

/// Why the connection must close.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("more than {MAX_BUFFERED} bytes buffered without a complete message")]
    Overflow,
}

/// One connection's unparsed bytes.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the socket. Fails (and keeps nothing more) once the buffer
    /// would exceed [`MAX_BUFFERED`]: call [`Self::next_frame`] until it returns `None` between
    /// reads, so only an incomplete message is ever held.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.buf.len().saturating_add(bytes.len()) > MAX_BUFFERED {
            return Err(FrameError::Overflow);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes held now (for tests and logs).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Everything still held, for the record when the stream is abandoned.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The next frame, `Ok(None)` when more bytes are needed. An error means the stream
    /// cannot be resynchronised and the connection should close.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let run = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let at_end = run == self.buf.len();
        let (mut used, mut ping) = (0, false);
        while used < run {
            let rest = self.buf.get(used..run).unwrap_or_default();
            if rest.starts_with(PING) {
                ping = true;
                used += PING.len();
            } else if at_end && PING.starts_with(rest) {
                break; // may become a ping with the next read ("\r\n" then "\r\n")
            } else {
                used += 1; // a stray line end before a message (RFC 3261 §7.5)
            }
        }
        self.buf.drain(..used);
        if ping {
            return Ok(Some(Frame::Ping));
        }
        if at_end {
            return Ok(None);
        }
        match message::parse_stream(&self.buf)? {
            Some((msg, used)) => {
                let raw: Vec<u8> = self.buf.drain(..used.min(self.buf.len())).collect();
                Ok(Some(Frame::Message(msg, raw)))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
