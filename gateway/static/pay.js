// The phone's confirmation page: Approve or Decline a payment that requires action.
"use strict";

const page = document.getElementById("pay");
const paymentId = page.dataset.paymentId;
const result = document.getElementById("result");
const buttons = [document.getElementById("approve"), document.getElementById("decline")];
// The confirmation URL in the QR code may carry the order's client_secret
// (docs/security.md#client-secrets): then this page reads the payment and confirms it with that
// secret instead of an API key.
const clientSecret = new URLSearchParams(location.search).get("client_secret");

const DONE = {
  succeeded: "Payment approved. You can close this page.",
  failed: "This payment did not go through.",
  canceled: "This payment was canceled.",
  refunded: "This payment was refunded.",
  partially_refunded: "This payment was partly refunded.",
  not_found: "There is no such payment.",
};

// An Idempotency-Key for this answer (crypto.randomUUID needs HTTPS, which a phone on the
// local network may not have).
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// `/v1/payments/<id><path>`; a read carries the client secret in its query (`secretInQuery`).
function paymentUrl(path, { secretInQuery = false } = {}) {
  const url = new URL(`/v1/payments/${encodeURIComponent(paymentId)}${path}`, location.origin);
  if (secretInQuery && clientSecret) {
    url.searchParams.set("client_secret", clientSecret);
  }
  return url.href;
}

// Tell the demo page, if it is open in this browser, when the customer answered: it measures
// how long after this click each of its channels shows the change. A real phone is another
// browser and says nothing; the demo page then shows no "after click" for it.
function announce(approve) {
  if ("BroadcastChannel" in window) {
    const channel = new BroadcastChannel("shop-demo");
    channel.postMessage({ type: "payment.answered", payment_id: paymentId, approve, at: Date.now() });
    channel.close();
  }
}

function show(status, failureCode) {
  page.dataset.status = status;
  const waiting = status === "requires_action";
  for (const button of buttons) {
    button.disabled = !waiting;
  }
  document.getElementById("actions").hidden = !waiting;
  document.getElementById("expiry").hidden = !waiting;
  if (status === "failed" && failureCode === "expired") {
    result.textContent = "The time to confirm this payment has run out.";
  } else if (status === "failed" && failureCode === "authentication_failed") {
    result.textContent = "Payment declined. You can close this page.";
  } else {
    result.textContent = DONE[status] || "";
  }
}

async function answer(approve) {
  for (const button of buttons) {
    button.disabled = true;
  }
  result.textContent = approve ? "Approving…" : "Declining…";
  announce(approve);
  try {
    // The secret goes in the body of the confirmation, in the query of a read.
    const response = await fetch(paymentUrl("/confirm"), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
      body: JSON.stringify(clientSecret ? { approve, client_secret: clientSecret } : { approve }),
    });
    const body = await response.json();
    if (response.ok) {
      show(body.status, body.failure_code);
      return;
    }
    result.textContent = body.detail || `The payment service answered ${response.status}.`;
    const current = await fetch(paymentUrl("", { secretInQuery: true }), { cache: "no-store" });
    if (current.ok) {
      const payment = await current.json();
      show(payment.status, payment.failure_code);
    }
  } catch (error) {
    result.textContent = "No connection. Try again.";
    for (const button of buttons) {
      button.disabled = false;
    }
  }
}

function showExpiry() {
  const element = document.getElementById("expiry");
  const expiresAt = element.dataset.expiresAt;
  if (expiresAt) {
    element.textContent = `Confirm before ${new Date(expiresAt).toLocaleTimeString()}.`;
  }
}

buttons[0].addEventListener("click", () => answer(true));
buttons[1].addEventListener("click", () => answer(false));
showExpiry();
show(page.dataset.status, page.dataset.failureCode);
