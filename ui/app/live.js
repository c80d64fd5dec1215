// The live socket: GET /v1/live as a WebSocket, held by the org's hub on the server (a Durable
// Object that hibernates between notices). The server sends {"type":"changed",...} after every
// committed change of the org; the page then asks GET /v1/changes and refetches what it shows.
//
// A browser cannot put an Authorization header on a WebSocket, so the token travels as the
// subprotocol "bearer.<JWT>" beside "leadheat.live.v1". When the socket closes (network, deploy,
// expired token: code 4001) the caller polls instead, and the socket is reopened with backoff
// using whatever token is current by then.

const PROTOCOL = "leadheat.live.v1";
// Keeps idle connections through proxies; the runtime answers "pong" without waking the hub.
const PING_MS = 30_000;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

/**
 * Opens the socket and keeps it open until `close()`.
 * `onNotice(notice)` for each change notice; `onTransport("socket" | "poll", detail)` when the
 * socket opens or is lost.
 */
export function openLiveSocket({ token, onNotice, onTransport }) {
  let socket = null;
  let pingTimer = null;
  let retryTimer = null;
  let failures = 0;
  let closed = false;

  function connect() {
    const current = token();
    if (closed || !current) return;
    const url = new URL("/v1/live", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    try {
      socket = new WebSocket(url, [PROTOCOL, `bearer.${current}`]);
    } catch (error) {
      onTransport("poll", error?.message || "WebSockets are unavailable");
      return retry();
    }
    socket.addEventListener("open", () => {
      failures = 0;
      onTransport("socket");
      pingTimer = setInterval(() => socket?.readyState === WebSocket.OPEN && socket.send("ping"), PING_MS);
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || event.data === "pong") return;
      let notice;
      try {
        notice = JSON.parse(event.data);
      } catch {
        return;
      }
      if (notice?.type === "changed") onNotice(notice);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(pingTimer);
      socket = null;
      if (closed) return;
      onTransport("poll", event.code === 4001 ? "the token expired" : `closed (${event.code})`);
      retry();
    });
  }

  function retry() {
    clearTimeout(retryTimer);
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures);
    failures += 1;
    retryTimer = setTimeout(connect, delay);
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      clearInterval(pingTimer);
      socket?.close(1000, "page closed the live connection");
      socket = null;
    },
  };
}
