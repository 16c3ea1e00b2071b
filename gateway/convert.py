"""The REST API's JSON documents: they live in common/documents.py, shared with the order service
(whose webhooks send the same event documents); the gateway's modules import them from here."""

from common.documents import confirm_url, event_json, order_json, payment_json, with_secret

__all__ = ["confirm_url", "event_json", "order_json", "payment_json", "with_secret"]
