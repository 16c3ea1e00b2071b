"""The order service: owns orders, and is the gRPC client of the payment service.

It starts in server.py (`python -m order_service`). From the wire in: the gRPC surface
(servicer.py) → the flows (orders.py; the article's "store the order, charge it, record the
answer" is `Orders.create`) → the storage (store.py) and the payment client (payment_client.py:
the article's steps 2-4, turn the order into a `ChargeRequest` and encode it, and 12-14, decode
the `Payment`). The order rules are domain.py's; REST idempotency is idempotency.py's.
"""
