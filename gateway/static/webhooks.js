// The fifth way (docs/webhooks.md): the order service POSTs each version of the order to a webhook
// receiver, server to server — no browser involved. The demo's receiver lives in the gateway
// (/demo/webhooks/…, gateway/routers/demo_webhooks.py); this panel shows what it got. Its
// "HTTP requests" are the POSTs the receiver got (retries included), its "after change" the
// receiver's arrival − the order's updated_at (both the server's clock).
import { apiUrl } from "./api.js";
import { FINAL } from "./channels.js";

const READ_EVERY_MS = 250;

export const WEBHOOK = {
  name: "webhook",
  how: "the order service POSTs each version, signed, to a receiver in this demo: server to server",
  follow: followWebhooks,
};

// Before an order is placed (an endpoint gets only the events after its creation): the demo
// account's endpoint aimed at the receiver. Answers { enabled, reason }.
export async function prepareWebhooks() {
  try {
    const response = await fetch(apiUrl(null, "/demo/webhooks/endpoint"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    if (!response.ok) {
      return { enabled: false, reason: `the gateway answered ${response.status}` };
    }
    return await response.json();
  } catch (error) {
    return { enabled: false, reason: "the gateway cannot be reached" };
  }
}

function followWebhooks(order, watcher) {
  let handed = 0; // arrivals already handed to the watcher
  let stopped = false;
  let timer = null;
  async function read() {
    let finished = false;
    try {
      const path = `/demo/orders/${encodeURIComponent(order.id)}/webhooks`;
      const response = await fetch(apiUrl(order, path), { cache: "no-store" });
      if (response.ok) {
        const { webhooks } = await response.json();
        for (const arrival of webhooks.slice(handed)) {
          watcher.request(); // one POST to the receiver
          watcher.update(arrival.event.data.order, new Date(arrival.received_at));
        }
        handed = webhooks.length;
        finished = webhooks.some((arrival) => FINAL.has(arrival.event.data.order.status));
      }
    } catch (error) {
      // The gateway is away for a moment: read again.
    }
    if (!stopped && !finished) {
      timer = setTimeout(read, READ_EVERY_MS);
    }
  }
  read();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
