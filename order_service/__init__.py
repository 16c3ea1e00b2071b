"""The order service: owns orders, and is the gRPC client of the payment service.

The article's steps 2-4 (turn the order into a `ChargeRequest`, encode it through the generated
stub) and 12-14 (decode the `Payment`, record it on the order) live in payments.py; the order
rules in domain.py; the flows in orders.py; the gRPC surface in servicer.py.
"""
