// The article's four ways for a web page to learn that an order changed
// (docs/push-channels.md#the-four-ways).
//
// Each follower takes the order document and a watcher, calls watcher.request() for every HTTP
// request it makes and watcher.update(order) for every version it receives, and returns a
// function that stops it. All four deliver the same order JSON and `version`; they differ in
// who waits (the browser between polls, or the server holding a request or a connection) and
// so in how many requests they spend and how soon a change is seen.
import { apiUrl, orderPath, socketUrl } from "./api.js";

export const FINAL = new Set(["payment_failed", "canceled", "refunded"]);
const SHORT_POLL_MS = 1000;
const LONG_POLL_WAIT_S = 30;
const RETRY_MS = 1000;
const WS_PING_MS = 25000;

export const CHANNELS = {
  short: {
    name: "short polling",
    how: "a GET every second with If-None-Match: 304 until the version changes",
    follow: followShortPolling,
  },
  long: {
    name: "long polling",
    how: `a GET the server holds until the version changes (Prefer: wait=${LONG_POLL_WAIT_S})`,
    follow: followLongPolling,
  },
  sse: {
    name: "Server-Sent Events",
    how: "one response that stays open: an event per version",
    follow: followServerSentEvents,
  },
  ws: {
    name: "WebSocket",
    how: "one upgraded connection: a JSON frame per version",
    follow: followWebSocket,
  },
};

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// One conditional GET, the request both pollings repeat: the order if its version differs from
// `etag` (with its new ETag), else the status (304 when nothing changed).
async function getIfChanged(order, etag, extraHeaders, watcher, signal) {
  watcher.request();
  const headers = etag ? { "If-None-Match": etag, ...extraHeaders } : {};
  const response = await fetch(apiUrl(order, orderPath(order)), { headers, cache: "no-store", signal });
  if (response.status !== 200) {
    await response.text(); // read to the end, so that the request completes
    return { status: response.status, order: null, etag };
  }
  const current = await response.json();
  return { status: 200, order: current, etag: response.headers.get("ETag") || `"${current.version}"` };
}

// 1. Short polling: the browser asks again every second. With If-None-Match an unchanged order
// costs a 304 without a body, but every watcher spends a request a second while nothing
// happens, and a change waits up to a second before anyone asks.
function followShortPolling(order, watcher) {
  let etag = null; // the first request has none: it fetches the current state
  let stopped = false;
  let timer = null;
  async function poll() {
    try {
      const answer = await getIfChanged(order, etag, {}, watcher);
      if (answer.order) {
        etag = answer.etag;
        watcher.update(answer.order);
        if (FINAL.has(answer.order.status)) {
          return; // nothing will change any more
        }
      }
    } catch (error) {
      // Offline for a moment: the next poll tries again.
    }
    if (!stopped) {
      timer = setTimeout(poll, SHORT_POLL_MS);
    }
  }
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// 2. Long polling: the same GET, but the server holds it (Prefer: wait) until the version
// differs from If-None-Match, then answers at once. One request per change (plus one per
// quiet `wait`), and the change arrives within milliseconds — at the price of a request the
// server keeps open, and a new one to send after each answer.
function followLongPolling(order, watcher) {
  const controller = new AbortController();
  let etag = null;
  async function loop() {
    while (!controller.signal.aborted) {
      try {
        // The first request fetches the current state at once; the next ones wait.
        const wait = etag ? { Prefer: `wait=${LONG_POLL_WAIT_S}` } : {};
        const answer = await getIfChanged(order, etag, wait, watcher, controller.signal);
        if (answer.order) {
          etag = answer.etag;
          watcher.update(answer.order);
          if (FINAL.has(answer.order.status)) {
            return;
          }
        } else if (answer.status !== 304) {
          await sleep(RETRY_MS); // an error answer: do not hammer the gateway
        }
        // 304: the wait ended with no change; ask again straight away.
      } catch (error) {
        if (controller.signal.aborted) {
          return;
        }
        await sleep(RETRY_MS);
      }
    }
  }
  loop();
  return () => controller.abort();
}

// 3. Server-Sent Events: one GET whose response never ends; the server writes an event per
// version. EventSource does the rest: it parses the stream and, if the connection drops,
// reconnects by itself after the server's `retry` delay, sending Last-Event-ID so that the
// server resumes after the last version received.
function followServerSentEvents(order, watcher) {
  const source = new EventSource(apiUrl(order, `${orderPath(order)}/events`));
  watcher.request(); // the GET that opens the stream
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CONNECTING) {
      watcher.request(); // the browser is about to reconnect: one more GET
    }
  });
  source.addEventListener("order.updated", (event) => {
    const message = JSON.parse(event.data);
    watcher.update(message.order);
    if (FINAL.has(message.order.status)) {
      // The server ends the stream after a final status. Close first, so the browser does not
      // reconnect only to be told 204 (which would stop it too, one request later).
      source.close();
    }
  });
  return () => source.close();
}

// 4. WebSocket: one HTTP request upgraded to a two-way connection; the server sends a JSON
// frame per version. Unlike EventSource, the browser does not reconnect by itself: on an
// unexpected close we connect again with ?after_version=<the last version received>.
// `afterVersion` null (no parameter) starts with the current state; a number v starts with
// every version after v — 0 replays the whole history, which is how the page shows it.
export function followWebSocket(order, watcher, afterVersion = null) {
  let resumeAfter = afterVersion;
  let socket = null;
  let pinger = null;
  let stopped = false;
  function connect() {
    const params = resumeAfter === null ? {} : { after_version: resumeAfter };
    socket = new WebSocket(socketUrl(order, `${orderPath(order)}/ws`, params));
    watcher.request(); // the HTTP/1.1 Upgrade request
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "order.updated") {
        resumeAfter = message.version;
        watcher.update(message.order);
      }
    });
    socket.addEventListener("open", () => {
      // An application-level ping now and then keeps idle proxies from closing the connection.
      pinger = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), WS_PING_MS);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(pinger);
      // 1000: final status; 4404: no such order; 1003: we sent something wrong. Else resume.
      if (!stopped && ![1000, 1003, 4404].includes(event.code)) {
        setTimeout(connect, RETRY_MS);
      }
    });
  }
  connect();
  return () => {
    stopped = true;
    clearInterval(pinger);
    socket.close(1000);
  };
}
