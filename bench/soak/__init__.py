"""The soak: the system runs for a while under a steady mixed load and must stay as it was.

`make soak` (SOAK_SECONDS, default 600) starts PostgreSQL and the set-up of
docs/guarantees.md#any-replica-any-request — two replicas of each gRPC service and two gateways
(tests/harness.py `Cluster`) — and drives it with

- shoppers (shoppers.py): orders with Idempotency-Keys at a steady rate, cards that pay or are
  declined, QR payments confirmed, some refunds, reads and lists;
- watchers on all four channels (watchers.py): SSE, WebSocket, long polling and gRPC WatchOrder,
  two of each, following orders from version 0 and hanging up and resuming all the time;
- a client that opens a new connection for every request, and two idle gRPC channels that must
  stay READY for the whole run (keepalive);

while every few seconds it samples every process's resident memory and open files, the
PostgreSQL connections and each process's event loop lag (samples.py). At the end the books are
audited from the databases. The goal (figures.py): after the warm-up, memory and open files flat
(under 10 % growth), no error, nothing lost. Figures go to bench/results/soak.{json,md,png}.
"""
