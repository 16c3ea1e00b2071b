"""The payment service: the gRPC server of the article's steps 6-11.

It starts in server.py (`python -m payment_service`). It receives `Charge` from the order
service, decodes it through the generated servicer base class (servicer.py), charges in one of
the transactions of payments.py — asking the simulated card processor (processor.py), storing the
payment (store.py) — and answers with a `Payment` message.
"""
