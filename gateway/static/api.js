// Where the demo page's requests go (docs/rest-api.md#routes, docs/security.md#the-demo-routes).
//
// Every API URL of the page is built by apiUrl(), and the three calls that change something —
// create, cancel, refund — each live in one function below. The browser holds no secret API
// key: a read of an order, its four push channels and its QR code are allowed by the order's
// `client_secret`, which apiUrl() appends whenever the order document carries one.

// The three write calls go to the demo routes of docs/security.md#the-demo-routes (POST
// /demo/orders, …/{id}/cancel, …/{id}/refund: the bodies and answers of /v1/orders), which the
// gateway makes for its demo account: the page holds no API key. Cancel and refund carry the
// order's client_secret (apiUrl), which is what lets them act on this order and no other.
const WRITE_PREFIX = "/demo/orders";

export class ApiError extends Error {}

// The URL of `path` on this gateway, with the query `params`, and the order's client_secret
// when `order` has one. `order` may be null (creating an order: there is no secret yet).
export function apiUrl(order, path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    url.searchParams.set(name, String(value));
  }
  if (order && order.client_secret) {
    url.searchParams.set("client_secret", order.client_secret);
  }
  return url.href;
}

// The same URL for a WebSocket: ws:// beside http://, wss:// beside https://.
export function socketUrl(order, path, params = {}) {
  const url = new URL(apiUrl(order, path, params));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export function orderPath(order) {
  return `/v1/orders/${encodeURIComponent(order.id)}`;
}

// An Idempotency-Key (crypto.randomUUID needs HTTPS; this page may be served over plain HTTP).
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A POST with a fresh Idempotency-Key: the order it answers with, or an ApiError carrying the
// problem's `detail`. A network failure is the TypeError of fetch().
async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError((answer && answer.detail) || `The gateway answered ${response.status}.`);
  }
  return answer;
}

export function createOrder(body) {
  return post(apiUrl(null, WRITE_PREFIX), body);
}

export function cancelOrder(order) {
  return post(apiUrl(order, `${WRITE_PREFIX}/${encodeURIComponent(order.id)}/cancel`), {});
}

// `amount` in minor units, or null for all that is left.
export function refundOrder(order, amount) {
  const body = amount === null ? {} : { amount };
  return post(apiUrl(order, `${WRITE_PREFIX}/${encodeURIComponent(order.id)}/refund`), body);
}
