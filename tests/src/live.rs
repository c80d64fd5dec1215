//! A WebSocket client for `GET /v1/live` (`tests/tests/live.rs`): connects through the local
//! runtime the way the sales UI does (token as a subprotocol) or with a bearer header, and reads
//! notices with a deadline.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::Runtime;

/// How the token travels.
pub enum Credentials<'a> {
    /// As the browser does: `Sec-WebSocket-Protocol: leadheat.live.v1, bearer.<JWT>`.
    Subprotocol(&'a str),
    /// `Authorization: Bearer <JWT>`, no subprotocol.
    Header(&'a str),
    None,
}

/// What the handshake answered when it did not switch protocols. Only the status: a WebSocket
/// client stops reading at the headers, so the body may not have arrived (read it with a plain
/// request instead).
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
}

pub struct LiveSocket {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server selected, if any.
    pub protocol: Option<String>,
}

/// What reading a socket gave before the deadline.
#[derive(Debug, PartialEq)]
pub enum Received {
    Text(String),
    Closed(Option<u16>),
    Nothing,
}

impl LiveSocket {
    pub fn connect(rt: &Runtime, credentials: Credentials<'_>) -> Result<LiveSocket, Refusal> {
        let url = rt.url("/v1/live").replacen("http://", "ws://", 1);
        let mut request = url.into_client_request().expect("a valid ws URL");
        let headers = request.headers_mut();
        match credentials {
            Credentials::Subprotocol(token) => {
                let offer = format!("leadheat.live.v1, bearer.{token}");
                headers.insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_str(&offer).unwrap(),
                );
            }
            Credentials::Header(token) => {
                headers.insert(
                    "Authorization",
                    HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
                );
            }
            Credentials::None => {}
        }
        match tungstenite::connect(request) {
            Ok((socket, response)) => Ok(LiveSocket {
                protocol: response
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                socket,
            }),
            Err(tungstenite::Error::Http(response)) => Err(Refusal {
                status: response.status().as_u16(),
            }),
            Err(other) => panic!("the live handshake failed: {other}"),
        }
    }

    pub fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .expect("the socket is open");
    }

    /// The next text message or close within `timeout`.
    pub fn receive(&mut self, timeout: Duration) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Nothing;
            }
            if let MaybeTlsStream::Plain(stream) = self.socket.get_mut() {
                stream.set_read_timeout(Some(left)).unwrap();
            }
            match self.socket.read() {
                Ok(Message::Text(text)) => return Received::Text(text.to_string()),
                Ok(Message::Close(frame)) => {
                    return Received::Closed(frame.map(|f| u16::from(f.code)))
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Received::Nothing
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Received::Closed(None)
                }
                Err(other) => panic!("reading the live socket failed: {other}"),
            }
        }
    }

    /// The next notice (parsed JSON) within `timeout`; panics on anything else.
    pub fn notice(&mut self, timeout: Duration) -> Value {
        match self.receive(timeout) {
            Received::Text(text) => serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("a notice is JSON ({e}): {text}")),
            other => panic!("expected a notice within {timeout:?}, got {other:?}"),
        }
    }

    /// Reads notices until one has `source`, within `timeout` overall; returns it.
    pub fn notice_from(&mut self, source: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let notice = self.notice(left);
            if notice["source"] == source {
                return notice;
            }
        }
    }

    pub fn close(mut self) {
        let _ = self.socket.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        }));
        let _ = self.socket.flush();
    }
}
