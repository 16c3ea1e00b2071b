// The demo checkout page: create an order, show the QR code while the payment waits for the
// customer, and follow the order by the channel the visitor picked (CONTRACT §5, §6).
"use strict";

const FINAL = new Set(["payment_failed", "canceled", "refunded"]);
const CHANNEL_NAMES = {
  short: "short polling",
  long: "long polling",
  sse: "Server-Sent Events",
  ws: "WebSocket",
};
const SHORT_POLL_MS = 1000;
const LONG_POLL_WAIT_S = 30;
const RETRY_MS = 1000;
const WS_PING_MS = 25000;

const $ = (id) => document.getElementById(id);

const state = { follower: null, channel: null, requests: 0, lastVersion: 0 };

// An Idempotency-Key (crypto.randomUUID needs HTTPS; this page may be served over plain HTTP).
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function orderUrl(orderId) {
  return `/v1/orders/${encodeURIComponent(orderId)}`;
}

function countRequest() {
  state.requests += 1;
  $("requests").textContent = String(state.requests);
}

// One conditional GET, the request both pollings repeat: the order if its version differs from
// `etag` (with its new ETag), else the status (304 when nothing changed).
async function getIfChanged(orderId, etag, extraHeaders, signal) {
  countRequest();
  const headers = etag ? { "If-None-Match": etag, ...extraHeaders } : {};
  const response = await fetch(orderUrl(orderId), { headers, cache: "no-store", signal });
  if (response.status !== 200) {
    await response.text(); // read to the end, so that the request completes
    return { status: response.status, order: null, etag };
  }
  const order = await response.json();
  return { status: 200, order, etag: response.headers.get("ETag") || `"${order.version}"` };
}

// -- the four channels: each follows one order and calls onOrder(order) for every version ------

function followShortPolling(orderId, onOrder) {
  let etag = null; // the first request has none: it fetches the current state
  let stopped = false;
  let timer = null;
  async function poll() {
    try {
      const answer = await getIfChanged(orderId, etag, {});
      if (answer.order) {
        etag = answer.etag;
        onOrder(answer.order);
        if (FINAL.has(answer.order.status)) {
          return;
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

function followLongPolling(orderId, onOrder) {
  const controller = new AbortController();
  let etag = null;
  async function loop() {
    while (!controller.signal.aborted) {
      try {
        const wait = etag ? { Prefer: `wait=${LONG_POLL_WAIT_S}` } : {};
        const answer = await getIfChanged(orderId, etag, wait, controller.signal);
        if (answer.order) {
          etag = answer.etag;
          onOrder(answer.order);
          if (FINAL.has(answer.order.status)) {
            return;
          }
        } else if (answer.status !== 304) {
          await sleep(RETRY_MS);
        }
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

function followServerSentEvents(orderId, onOrder) {
  // The browser reconnects by itself after `retry` ms, sending Last-Event-ID; after the final
  // status the server ends the stream and answers the reconnect with 204, which stops it.
  const source = new EventSource(`${orderUrl(orderId)}/events`);
  source.addEventListener("open", countRequest);
  source.addEventListener("order.updated", (event) => {
    const message = JSON.parse(event.data);
    onOrder(message.order);
    if (FINAL.has(message.order.status)) {
      source.close();
    }
  });
  return () => source.close();
}

function followWebSocket(orderId, onOrder) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let afterVersion = 0;
  let socket = null;
  let pinger = null;
  let stopped = false;
  function connect() {
    const query = afterVersion ? `?after_version=${afterVersion}` : "";
    socket = new WebSocket(`${scheme}://${location.host}${orderUrl(orderId)}/ws${query}`);
    countRequest(); // the HTTP/1.1 Upgrade request
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "order.updated") {
        afterVersion = message.version;
        onOrder(message.order);
      }
    });
    socket.addEventListener("open", () => {
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

const FOLLOW = {
  short: followShortPolling,
  long: followLongPolling,
  sse: followServerSentEvents,
  ws: followWebSocket,
};

// -- the page ------------------------------------------------------------------------------------

function showOrder(order) {
  $("order").hidden = false;
  $("order-id").textContent = order.id;
  $("version").textContent = String(order.version);
  const status = $("status");
  status.textContent = order.status.replaceAll("_", " ");
  status.dataset.status = order.status;
  const action = order.payment && order.payment.next_action;
  const waiting = order.status === "requires_action" && action;
  $("qr").hidden = !waiting;
  if (waiting) {
    $("qr-image").src = `/v1/payments/${encodeURIComponent(order.payment.id)}/qr.svg`;
    $("confirm-link").href = action.confirm_url;
    $("expires").textContent = `The code expires at ${new Date(action.expires_at).toLocaleTimeString()}.`;
  }
}

function formatTime(date) {
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function onOrder(order) {
  if (order.version <= state.lastVersion) {
    return; // already shown (a resume after a reconnect may repeat nothing, but be sure)
  }
  const first = state.lastVersion === 0;
  state.lastVersion = order.version;
  const now = new Date();
  const delay = first ? "state when following began" : `${Math.max(0, now - Date.parse(order.updated_at))} ms`;
  if (!first) {
    $("delay").textContent = delay;
  }
  showOrder(order);

  const row = document.createElement("tr");
  const cells = [formatTime(now), CHANNEL_NAMES[state.channel], String(order.version), null, String(state.requests), delay];
  cells.forEach((text, index) => {
    const cell = document.createElement("td");
    if (text === null) {
      const badge = document.createElement("span");
      badge.className = "status";
      badge.dataset.status = order.status;
      badge.textContent = order.status.replaceAll("_", " ");
      cell.append(badge);
    } else {
      cell.textContent = text;
    }
    if (index >= 4) {
      cell.className = "num";
    }
    row.append(cell);
  });
  $("updates").prepend(row);
}

function stopFollowing() {
  if (state.follower) {
    state.follower();
    state.follower = null;
  }
}

async function placeOrder(event) {
  event.preventDefault();
  stopFollowing();
  $("error").textContent = "";
  const button = $("place-order");
  button.disabled = true;
  try {
    const response = await fetch("/v1/orders", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
      body: JSON.stringify({
        customer_id: "cus_demo",
        currency: "EUR",
        items: [{ sku: "BOOK-42", quantity: 2, unit_price: 1299 }],
        payment_method: $("payment-method").value,
      }),
    });
    const order = await response.json();
    if (!response.ok) {
      $("error").textContent = order.detail || `The gateway answered ${response.status}.`;
      return;
    }
    state.channel = new FormData($("checkout")).get("channel");
    state.requests = 0;
    state.lastVersion = 0;
    $("requests").textContent = "0";
    $("delay").textContent = "—";
    $("channel").textContent = CHANNEL_NAMES[state.channel];
    $("updates").replaceChildren();
    showOrder(order);
    state.follower = FOLLOW[state.channel](order.id, onOrder);
  } catch (error) {
    $("error").textContent = "The gateway cannot be reached.";
  } finally {
    button.disabled = false;
  }
}

$("checkout").addEventListener("submit", placeOrder);
$("stop").addEventListener("click", () => {
  stopFollowing();
  $("channel").textContent += " (stopped)";
});
