//! `GET /v1/live`: the sales UI's WebSocket for change notices, and `LiveHub`, the Durable Object
//! (one per org, named by the org id) that holds the org's sockets.
//!
//! The worker authenticates the upgrade (the token comes as `Authorization: Bearer` or, from a
//! browser, as a `bearer.<JWT>` subprotocol: `leadheat_domain::live`) and hands it to the org's
//! hub. The hub accepts sockets with the hibernation API: between notices it is evicted from
//! memory while the sockets stay open, so an idle org costs nothing, and pings are answered by
//! the runtime without waking it. Every worker that commits a change posts a notice to the hub
//! (`leadheat_edge::live::publish`), which sends it to each socket whose token is still valid.
//!
//! A socket lives no longer than its token: the hub keeps an alarm at the earliest expiry among its
//! sockets and closes the expired ones (code 4001) when it rings, notice or not. A user holds at
//! most `MAX_SOCKETS_PER_USER` sockets (filed under a tag per user), an org `MAX_SOCKETS_PER_ORG`.

use leadheat_domain::live::{
    self as rules, ChangeSource, Grant, Notice, CLOSE_TOKEN_EXPIRED, MAX_SOCKETS_PER_ORG,
    MAX_SOCKETS_PER_USER, PING, PONG,
};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::live::{self as hub, CONNECT_PATH, GRANT_HEADER, HUB_ORIGIN, PUBLISH_PATH};
use serde_json::json;
use worker::{
    durable_object, Context, DurableObject, Env, Headers, Method, Request, RequestInit, Response,
    ScheduledTime, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebSocketRequestResponsePair,
};

use crate::context::Ctx;
use crate::request::ApiRequest;

/// Authenticates an upgrade request and passes it to the caller's org hub.
pub async fn connect(req: &ApiRequest, env: Env) -> Result<Response, Problem> {
    if !rules::is_websocket_upgrade(req.header("Upgrade").as_deref()) {
        return Err(Problem::new(
            426,
            "upgrade-required",
            "Upgrade required",
            "GET /v1/live is a WebSocket: send Upgrade: websocket",
        ));
    }
    let protocols = req.header("Sec-WebSocket-Protocol");
    let offer = rules::parse_offer(protocols.as_deref());
    let authorization = req.header("Authorization");
    let token = leadheat_domain::auth::bearer_token(authorization.as_deref()).or(offer.token);
    let ctx = Ctx::authenticate_token(token, env).await?;
    let grant = Grant {
        user: ctx.claims.sub.clone(),
        exp: ctx.claims.exp,
    };

    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    let grant = serde_json::to_string(&grant).map_err(|e| Problem::internal("live grant", e))?;
    headers.set(GRANT_HEADER, &grant)?;
    if offer.speaks_protocol {
        headers.set("Sec-WebSocket-Protocol", rules::PROTOCOL)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(&format!("{HUB_ORIGIN}{CONNECT_PATH}"), &init)?;
    let mut answer = hub::hub(&ctx.env, ctx.org())?
        .fetch_with_request(request)
        .await?;
    if answer.status_code() == 101 {
        return Ok(answer);
    }
    // A refusal (e.g. 429 over a cap). The hub's answer has immutable headers, and CORS headers
    // are added to every answer of the worker, so it is copied.
    let headers = Headers::new();
    for (name, value) in answer.headers().entries() {
        headers.set(&name, &value)?;
    }
    let status = answer.status_code();
    Ok(Response::from_bytes(answer.bytes().await?)?
        .with_status(status)
        .with_headers(headers))
}

/// Sends a notice for `org_id` after the response, without delaying it.
pub fn notify_later(worker_ctx: &Context, env: &Env, org_id: &str, source: ChangeSource) {
    let env = env.clone();
    let org_id = org_id.to_string();
    let at = leadheat_edge::clock::rfc3339(leadheat_edge::clock::now());
    worker_ctx.wait_until(async move { hub::publish(&env, &org_id, source, &at).await });
}

/// The live hub of one org.
#[durable_object]
pub struct LiveHub {
    state: State,
}

impl DurableObject for LiveHub {
    fn new(state: State, _env: Env) -> Self {
        // Answered by the runtime itself, so a page's keep-alive never wakes a hibernating hub.
        if let Ok(pair) = WebSocketRequestResponsePair::new(PING, PONG) {
            state.set_websocket_auto_response(&pair);
        }
        LiveHub { state }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let outcome = match (req.method(), req.path().as_str()) {
            (Method::Get, CONNECT_PATH) => self.accept(&req).await,
            (Method::Post, PUBLISH_PATH) => self.broadcast(req).await,
            (_, path) => Err(Problem::not_found(format!("the live hub serves no {path}"))),
        };
        http::respond(outcome)
    }

    /// Rings at the earliest token expiry among the sockets: closes the expired ones and sets the
    /// alarm for the next.
    async fn alarm(&self) -> worker::Result<Response> {
        let now = leadheat_edge::clock::now().timestamp();
        let sockets = self.state.get_websockets();
        let grants: Vec<Option<Grant>> = sockets
            .iter()
            .map(|socket| socket.deserialize_attachment().ok().flatten())
            .collect();
        let sweep = rules::sweep(&grants, now);
        for index in &sweep.close {
            let _ = sockets[*index].close(Some(CLOSE_TOKEN_EXPIRED), Some("token expired"));
        }
        if let Some(at) = sweep.next_alarm_millis {
            self.state.storage().set_alarm(alarm_time(at)).await?;
        }
        Response::empty()
    }

    async fn websocket_message(
        &self,
        _ws: WebSocket,
        _message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        // Pages only listen (their pings are answered without this handler); anything else
        // they send is ignored.
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        // Completes the closing handshake; the socket may already be gone, which is fine.
        let code = u16::try_from(code)
            .ok()
            .filter(|c| *c >= 1000 && *c != 1005 && *c != 1006)
            .unwrap_or(1000);
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        Ok(())
    }
}

impl LiveHub {
    async fn accept(&self, req: &Request) -> Result<Response, Problem> {
        let grant: Grant = req
            .headers()
            .get(GRANT_HEADER)?
            .and_then(|raw| serde_json::from_str(&raw).ok())
            .ok_or_else(|| Problem::bad_request("a live connection needs a verified grant"))?;
        if self.state.get_websockets().len() >= MAX_SOCKETS_PER_ORG {
            return Err(Problem::too_many_requests(format!(
                "this org has {MAX_SOCKETS_PER_ORG} open live connections; poll GET /v1/changes instead"
            )));
        }
        let tag = rules::user_tag(&grant.user);
        if self.state.get_websockets_with_tag(&tag).len() >= MAX_SOCKETS_PER_USER {
            return Err(Problem::too_many_requests(format!(
                "this user has {MAX_SOCKETS_PER_USER} open live connections; close one or poll GET /v1/changes instead"
            )));
        }
        self.schedule_expiry(&grant).await?;
        let pair = WebSocketPair::new()?;
        self.state.accept_websocket_with_tags(&pair.server, &[&tag]);
        pair.server.serialize_attachment(&grant)?;
        let mut response = Response::from_websocket(pair.client)?;
        if let Some(protocol) = req.headers().get("Sec-WebSocket-Protocol")? {
            response
                .headers_mut()
                .set("Sec-WebSocket-Protocol", &protocol)?;
        }
        Ok(response)
    }

    /// Makes sure the alarm rings by the time `grant`'s token expires.
    async fn schedule_expiry(&self, grant: &Grant) -> worker::Result<()> {
        let storage = self.state.storage();
        let at = grant.expires_at_millis();
        if rules::needs_earlier_alarm(storage.get_alarm().await?, at) {
            storage.set_alarm(alarm_time(at)).await?;
        }
        Ok(())
    }

    async fn broadcast(&self, mut req: Request) -> Result<Response, Problem> {
        let notice: Notice = req
            .json()
            .await
            .map_err(|e| Problem::bad_request(format!("not a live notice: {e}")))?;
        let text =
            serde_json::to_string(&notice).map_err(|e| Problem::internal("live notice", e))?;
        let now = leadheat_edge::clock::now().timestamp();
        let (mut delivered, mut closed) = (0u32, 0u32);
        for socket in self.state.get_websockets() {
            let grant: Option<Grant> = socket.deserialize_attachment().ok().flatten();
            if Grant::expired(grant.as_ref(), now) {
                let _ = socket.close(Some(CLOSE_TOKEN_EXPIRED), Some("token expired"));
                closed += 1;
            } else if socket.send_with_str(&text).is_ok() {
                delivered += 1;
            }
        }
        http::json(200, &json!({"delivered": delivered, "closed": closed}))
    }
}

/// An alarm time from Unix milliseconds.
fn alarm_time(millis: i64) -> ScheduledTime {
    ScheduledTime::new(worker::js_sys::Date::new(&(millis as f64).into()))
}
