// The demo checkout page (docs/demo-page.md#the-demo-page-and-the-qr-code-confirmation): create an
// order, show its QR code while the payment waits for the customer, and follow the order by one
// channel or by all four side by side. channels.js holds the four ways to follow an order and
// api.js every URL and write call; this file measures and shows what the channels deliver.
import { ApiError, apiUrl, cancelOrder, createOrder, refundOrder } from "./api.js";
import { CHANNELS, followWebSocket } from "./channels.js";
import { WEBHOOK, prepareWebhooks } from "./webhooks.js";

const $ = (id) => document.getElementById(id);
const CANCELABLE = new Set(["pending_payment", "requires_action"]);
const REFUNDABLE = new Set(["paid", "partially_refunded"]);
// Every panel of the side-by-side view: the four channels, and the fifth way, a webhook.
const PANELS = { ...CHANNELS, webhook: WEBHOOK };

const state = {
  order: null, // the newest version of the order, from any channel or answer
  history: new Map(), // version → that version of the order
  stops: [], // one function per running follower
  asked: null, // the last change asked for: { at, version }
};

// -- formatting -------------------------------------------------------------------------------

function formatTime(date) {
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

// The cart is in EUR: two decimals.
function formatMoney(minorUnits, currency) {
  return `${(minorUnits / 100).toFixed(2)} ${currency}`;
}

function formatDelay(ms) {
  return ms === null ? "—" : `${ms} ms`;
}

function statusBadge(status) {
  const badge = document.createElement("span");
  badge.className = "status";
  badge.dataset.status = status;
  badge.textContent = status.replaceAll("_", " ");
  return badge;
}

function setStatus(element, status) {
  element.textContent = status.replaceAll("_", " ");
  element.dataset.status = status;
}

// A table row; a cell is text, a Node, or [text, className].
function row(cells) {
  const tr = document.createElement("tr");
  for (const value of cells) {
    const td = document.createElement("td");
    const [content, className] = Array.isArray(value) ? value : [value, ""];
    td.append(content);
    td.className = className;
    tr.append(td);
  }
  return tr;
}

// -- measuring what a channel delivers --------------------------------------------------------

// A watcher for one channel: counts its HTTP requests, measures each version's delay, and hands
// both to `view` (the one-channel table or a panel). Versions it has already shown are ignored.
function watcher(view) {
  let requests = 0;
  let lastVersion = 0;
  let measuredAsk = null; // the click already measured: one "after click" per click
  let stopped = false;
  return {
    request() {
      requests += 1;
      view.requests(requests);
    },
    // `arrivedAt`: when it arrived, if not now (a webhook arrives at its receiver, not here);
    // every version such a follower hands on is a change, its first included.
    update(order, arrivedAt = null) {
      if (stopped || order.id !== state.order.id || order.version <= lastVersion) {
        return;
      }
      const first = lastVersion === 0 && arrivedAt === null;
      lastVersion = order.version;
      const arrived = arrivedAt || new Date();
      let afterClick = null;
      const ask = state.asked;
      if (!first && ask && ask !== measuredAsk && order.version > ask.version) {
        afterClick = Math.max(0, arrived - ask.at);
        measuredAsk = ask;
      }
      view.update({
        order,
        first,
        arrived,
        requests,
        // Clamped at 0: the server's clock may run a little ahead of this browser's.
        afterChange: first ? null : Math.max(0, arrived - Date.parse(order.updated_at)),
        afterClick,
      });
      learn(order);
    },
    stop() {
      stopped = true;
    },
  };
}

function follow(channel, view) {
  const watching = watcher(view);
  const stopChannel = PANELS[channel].follow(state.order, watching);
  state.stops.push(() => {
    watching.stop();
    stopChannel();
  });
}

function stopFollowing() {
  for (const stop of state.stops) {
    stop();
  }
  state.stops = [];
}

// -- the two views ----------------------------------------------------------------------------

// The one-channel view: the stats in the order card, one table of updates (newest first).
function singleView(channel) {
  $("channel").textContent = CHANNELS[channel].name;
  $("requests").textContent = "0";
  $("delay").textContent = "—";
  $("updates").replaceChildren();
  return {
    requests(count) {
      $("requests").textContent = String(count);
    },
    update(u) {
      const delay = u.first ? "state when following began" : formatDelay(u.afterChange);
      if (!u.first) {
        $("delay").textContent = delay;
      }
      $("updates").prepend(
        row([
          formatTime(u.arrived),
          CHANNELS[channel].name,
          String(u.order.version),
          statusBadge(u.order.status),
          [String(u.requests), "num"],
          [delay, "num"],
          [formatDelay(u.afterClick), "num"],
        ]),
      );
    },
  };
}

// One panel of the side-by-side view, from the <template> (rows oldest first, so that the same
// version sits on the same line in every panel).
function panelView(channel) {
  const panel = $("panel-template").content.firstElementChild.cloneNode(true);
  panel.id = `panel-${channel}`;
  panel.dataset.channel = channel;
  panel.setAttribute("aria-labelledby", `panel-${channel}-title`);
  const title = panel.querySelector(".panel-title");
  title.id = `panel-${channel}-title`;
  title.textContent = PANELS[channel].name;
  panel.querySelector(".panel-how").textContent = PANELS[channel].how;
  const part = (name) => panel.querySelector(`.panel-${name}`);
  $("panels").append(panel);
  return {
    // A panel that will show nothing, and why (webhooks that cannot reach this demo).
    off(reason) {
      part("how").textContent = reason;
    },
    requests(count) {
      part("requests").textContent = String(count);
    },
    update(u) {
      setStatus(part("status"), u.order.status);
      part("version").textContent = String(u.order.version);
      if (!u.first) {
        part("delay").textContent = formatDelay(u.afterChange);
      }
      const line = row([
        String(u.order.version),
        statusBadge(u.order.status),
        u.first ? ["start", "num"] : [formatDelay(u.afterChange), "num"],
        [formatDelay(u.afterClick), "num"],
      ]);
      line.dataset.version = String(u.order.version);
      line.dataset.requests = String(u.requests);
      line.title = `arrived ${formatTime(u.arrived)}, after ${u.requests} HTTP request(s)`;
      part("updates").append(line);
    },
  };
}

function chosenView() {
  return new FormData($("checkout")).get("channel");
}

function showView(view) {
  const all = view === "all";
  $("compare").hidden = !all;
  $("single").hidden = all;
  $("single-stats").hidden = all;
}

// -- the order, its history, cancel and refund ------------------------------------------------

// Every version of the order the page receives, from any channel or answer, passes here.
function learn(order) {
  if (!state.order || order.id !== state.order.id) {
    return; // a late message about an order the page no longer follows
  }
  if (!state.history.has(order.version)) {
    state.history.set(order.version, order);
    showHistory();
  }
  if (order.version >= state.order.version) {
    state.order = order;
    showOrder(order);
  }
}

function showOrder(order) {
  $("order").hidden = false;
  $("order-id").textContent = order.id;
  $("version").textContent = String(order.version);
  setStatus($("status"), order.status);
  const action = order.payment && order.payment.next_action;
  const waiting = order.status === "requires_action" && action;
  $("qr").hidden = !waiting;
  if (waiting) {
    // A path on this origin, not next_action.qr_svg_url: the public URL may be another host.
    $("qr-image").src = apiUrl(order, `/v1/payments/${encodeURIComponent(order.payment.id)}/qr.svg`);
    $("confirm-link").href = action.confirm_url;
    $("expires").textContent = `The code expires at ${new Date(action.expires_at).toLocaleTimeString()}.`;
  }
  $("cancel").hidden = !CANCELABLE.has(order.status);
  $("refund-form").hidden = !REFUNDABLE.has(order.status);
  const left = order.amount - order.amount_refunded;
  $("refundable").textContent = `${formatMoney(left, order.currency)} left; empty: all of it`;
  $("refund-amount").max = (left / 100).toFixed(2);
}

// The versions in order. A server that does not replay the history sends the current version
// only: the list then starts later, and says so.
function showHistory() {
  const versions = [...state.history.keys()].sort((a, b) => a - b);
  $("history-card").hidden = false;
  $("history").replaceChildren(
    ...versions.map((version) => {
      const order = state.history.get(version);
      const line = row([
        String(version),
        statusBadge(order.status),
        order.payment ? statusBadge(order.payment.status) : "—",
        [formatMoney(order.amount_refunded, order.currency), "num"],
        formatTime(new Date(order.updated_at)),
      ]);
      line.dataset.version = String(version);
      return line;
    }),
  );
  const gap = $("history-gap");
  gap.hidden = versions[0] === 1;
  const missing = versions[0] === 2 ? "version 1" : `versions 1–${versions[0] - 1}`;
  gap.textContent = `The server did not replay ${missing}: the list starts with the first version this page received.`;
}

function showActionError(error) {
  $("action-error").textContent = error instanceof ApiError ? error.message : "The gateway cannot be reached.";
}

// Cancel or refund: note when the visitor asked (for "after click"), send it, learn the answer.
async function ask(call) {
  $("action-error").textContent = "";
  const buttons = [$("cancel"), $("refund")];
  buttons.forEach((button) => (button.disabled = true));
  state.asked = { at: new Date(), version: state.order.version };
  try {
    learn(await call(state.order));
  } catch (error) {
    state.asked = null; // nothing changed: no delay to measure
    showActionError(error);
  } finally {
    buttons.forEach((button) => (button.disabled = false));
  }
}

// "5.50" → 550; "" → null (all that is left).
function refundAmount() {
  const text = $("refund-amount").value.trim();
  return text === "" ? null : Math.round(Number(text) * 100);
}

// The phone page, when it is open in this browser, says when Approve or Decline was clicked
// (a real phone cannot: then "after click" stays empty for that change).
function listenToThePhone() {
  if (!("BroadcastChannel" in window)) {
    return;
  }
  new BroadcastChannel("shop-demo").addEventListener("message", (event) => {
    const message = event.data;
    const order = state.order;
    if (message.type === "payment.answered" && order && order.payment && order.payment.id === message.payment_id) {
      state.asked = { at: new Date(message.at), version: order.version };
    }
  });
}

async function placeOrder(event) {
  event.preventDefault();
  stopFollowing();
  $("error").textContent = "";
  $("action-error").textContent = "";
  const button = $("place-order");
  button.disabled = true;
  try {
    const view = chosenView();
    const webhooks = view === "all" ? await prepareWebhooks() : null;
    const order = await createOrder({
      customer_id: "cus_demo",
      currency: "EUR",
      items: [{ sku: "BOOK-42", quantity: 2, unit_price: 1299 }],
      payment_method: $("payment-method").value,
    });
    state.order = order;
    state.history = new Map();
    state.asked = null;
    learn(order);
    showView(view);
    if (view === "all") {
      $("panels").replaceChildren();
      $("compare-empty").hidden = true;
      for (const channel of Object.keys(CHANNELS)) {
        follow(channel, panelView(channel));
      }
      const webhookPanel = panelView("webhook");
      if (webhooks.enabled) {
        follow("webhook", webhookPanel);
      } else {
        webhookPanel.off(webhooks.reason);
      }
    } else {
      follow(view, singleView(view));
    }
    // The history: the WebSocket channel asked for every version after 0. It counts no
    // requests of the panels; it only feeds learn().
    state.stops.push(followWebSocket(order, { request() {}, update: learn }, 0));
  } catch (error) {
    $("error").textContent = error instanceof ApiError ? error.message : "The gateway cannot be reached.";
  } finally {
    button.disabled = false;
  }
}

// `/?channel=sse` (short, long, sse, ws, all) opens the page with that view chosen.
function chooseFromAddress() {
  const wanted = new URLSearchParams(location.search).get("channel");
  const radio = document.querySelector(`input[name="channel"][value="${CSS.escape(wanted || "")}"]`);
  if (radio) {
    radio.checked = true;
  }
  showView(chosenView());
}

$("checkout").addEventListener("submit", placeOrder);
$("checkout").addEventListener("change", (event) => {
  if (event.target.name === "channel" && state.stops.length === 0) {
    showView(chosenView()); // while nothing is followed, show the view that will be used
  }
});
$("cancel").addEventListener("click", () => ask(cancelOrder));
$("refund-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const amount = refundAmount();
  ask((order) => refundOrder(order, amount));
});
$("stop").addEventListener("click", () => {
  stopFollowing();
  $("channel").textContent += " (stopped)";
});
chooseFromAddress();
listenToThePhone();
