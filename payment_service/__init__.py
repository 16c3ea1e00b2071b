"""The payment service: the gRPC server of the article's steps 6-11.

It receives `Charge` from the order service, decodes it through the generated servicer base
class (servicer.py), asks the simulated card processor (processor.py), stores the payment
(store.py) and answers with a `Payment` message.
"""
