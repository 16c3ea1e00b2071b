"""Webhooks (docs/webhooks.md): endpoints an account registers, and the deliveries of its events to
them, sent by every replica's worker and signed as Standard Webhooks (standardwebhooks.com) does
(common/webhook_signatures.py).

    settings.py    WEBHOOK_* settings
    urls.py        which URLs and addresses may be called (SSRF)
    endpoints.py   the endpoints: create, read, delete, rotate the secret
    deliveries.py  one row per event and endpoint: queued with the event, claimed, finished
    sender.py      one HTTP attempt
    worker.py      the loop that claims due deliveries and attempts them
    service.py     the gRPC WebhookService
"""
