//! `GET /v1/live`: the sales UI's WebSocket for change notices, and `LiveHub`, the Durable Object
//! (one per org, named by the org id) that holds the org's sockets.
//!
//! The worker authenticates the upgrade (the token comes as `Authorization: Bearer` or, from a
//! browser, as a `bearer.<JWT>` subprotocol: `leadheat_domain::live`) and hands it to the org's
//! hub. The hub accepts sockets with the hibernation API: between notices it is evicted from
//! memory while the sockets stay open, so an idle org costs nothing, and pings are answered by
//! the runtime without waking it. Every worker that commits a change posts a notice to the hub
//! (`leadheat_edge::live::publish`), which sends it to each socket whose token is still valid.

use leadheat_domain::live::{
    self as rules, ChangeSource, Grant, Notice, CLOSE_TOKEN_EXPIRED, MAX_SOCKETS_PER_ORG, PING,
    PONG,
};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::live::{self as hub, CONNECT_PATH, GRANT_HEADER, HUB_ORIGIN, PUBLISH_PATH};
use serde_json::json;
use worker::{
    durable_object, Context, DurableObject, Env, Headers, Method, Request, RequestInit, Response,
    State, WebSocket, WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
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
    Ok(hub::hub(&ctx.env, ctx.org())?
        .fetch_with_request(request)
        .await?)
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
            (Method::Get, CONNECT_PATH) => self.accept(&req),
            (Method::Post, PUBLISH_PATH) => self.broadcast(req).await,
            (_, path) => Err(Problem::not_found(format!("the live hub serves no {path}"))),
        };
        http::respond(outcome)
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
    fn accept(&self, req: &Request) -> Result<Response, Problem> {
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
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(&grant)?;
        let mut response = Response::from_websocket(pair.client)?;
        if let Some(protocol) = req.headers().get("Sec-WebSocket-Protocol")? {
            response
                .headers_mut()
                .set("Sec-WebSocket-Protocol", &protocol)?;
        }
        Ok(response)
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
