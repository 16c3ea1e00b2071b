// An independent gRPC client: Node's @grpc/grpc-js with @grpc/proto-loader reading protos/ at
// run time (no generated code), against the order and the payment service.
//
//   node tests/node/client.mjs ORDER_TARGET PAYMENT_TARGET     e.g. 127.0.0.1:50051 127.0.0.1:50052
//
// It calls CreateOrder, GetOrder and WatchOrder on the order service and GetPayment on the
// payment service, provokes two errors, and prints what it saw as one JSON document on stdout
// (int64 as numbers, enums by name, field names as in the .proto files); the Python test
// (test_node_client.py) judges it. Exit code 0 unless a call failed in a way not asked for.

import fs from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTOS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "protos");
const DEADLINE_MS = 5000;

const definition = protoLoader.loadSync(["shop/order/v1/order.proto", "shop/payment/v1/payment.proto"], {
  includeDirs: [PROTOS],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const shop = grpc.loadPackageDefinition(definition).shop;

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function metadata(requestId) {
  const md = new grpc.Metadata();
  md.set("x-request-id", requestId);
  return md;
}

// A unary call as a promise that resolves to {reply} or {error: {code, name, details, trailers}}.
function unary(client, method, request, requestId) {
  return new Promise((resolve) => {
    client[method](request, metadata(requestId), { deadline: deadline() }, (error, reply) => {
      if (error) {
        resolve({
          error: {
            code: error.code,
            name: grpc.status[error.code],
            details: error.details,
            trailers: Object.keys(error.metadata ? error.metadata.getMap() : {}),
          },
        });
      } else {
        resolve({ reply });
      }
    });
  });
}

// A server-streaming call, read to its end: every message, and how the stream ended.
function stream(client, method, request, requestId) {
  return new Promise((resolve) => {
    const messages = [];
    const call = client[method](request, metadata(requestId), { deadline: deadline() });
    call.on("data", (message) => messages.push(message));
    call.on("error", (error) => resolve({ messages, status: { code: error.code, name: grpc.status[error.code] } }));
    call.on("status", (status) => {
      if (status.code === grpc.status.OK) resolve({ messages, status: { code: 0, name: "OK" } });
    });
  });
}

function orderRequest(paymentMethod) {
  return {
    customer_id: "cus_node",
    currency: "EUR",
    items: [{ sku: "BOOK-42", quantity: 2, unit_price: 1299 }],
    payment_method: paymentMethod,
  };
}

async function main() {
  const [orderTarget, paymentTarget] = process.argv.slice(2);
  if (!orderTarget || !paymentTarget) {
    console.error("usage: node client.mjs ORDER_TARGET PAYMENT_TARGET");
    process.exit(2);
  }
  // Mutual TLS when GRPC_TLS_CA, GRPC_TLS_CERT and GRPC_TLS_KEY name PEM files, as for the
  // services themselves (docs/security.md#mtls-between-the-services); plaintext otherwise.
  const tls = ["GRPC_TLS_CA", "GRPC_TLS_KEY", "GRPC_TLS_CERT"].map((name) => process.env[name]);
  const credentials = tls.every(Boolean)
    ? grpc.credentials.createSsl(...tls.map((path) => fs.readFileSync(path)))
    : grpc.credentials.createInsecure();
  const orders = new shop.order.v1.OrderService(orderTarget, credentials);
  const payments = new shop.payment.v1.PaymentService(paymentTarget, credentials);
  try {
    const created = await unary(orders, "CreateOrder", orderRequest("pm_card_visa"), "req_node_create");
    if (created.error) throw new Error(`CreateOrder failed: ${JSON.stringify(created.error)}`);
    const order = created.reply;
    const fetched = await unary(orders, "GetOrder", { order_id: order.id }, "req_node_get");
    const payment = await unary(payments, "GetPayment", { payment_id: order.payment.id }, "req_node_payment");
    const declined = await unary(orders, "CreateOrder", orderRequest("pm_card_chargeDeclined"), "req_node_declined");
    const watched = declined.reply
      ? await stream(orders, "WatchOrder", { order_id: declined.reply.id, after_version: 0 }, "req_node_watch")
      : null;
    const notFound = await unary(orders, "GetOrder", { order_id: "ord_doesnotexist" }, "req_node_missing");
    const invalid = await unary(orders, "CreateOrder", orderRequest("pm_card_nonsense"), "req_node_invalid");
    const report = {
      created: order,
      fetched: fetched.reply ?? fetched.error,
      payment: payment.reply ?? payment.error,
      declined: declined.reply ?? declined.error,
      watched,
      not_found: notFound.error ?? null,
      invalid: invalid.error ?? null,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  } finally {
    orders.close();
    payments.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
