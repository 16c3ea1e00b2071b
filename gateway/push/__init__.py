"""Push: how the gateway follows orders for its SSE, WebSocket and long-poll clients.

One `WatchOrder` stream per watched order per gateway process (the hub), shared by all of that
order's clients, each of which has a bounded queue of its own (a subscription). Every version
is encoded once — as the order JSON, an SSE event and a WebSocket frame — however many clients
receive it.
"""

from gateway.push.hub import Hub, OrderNotFound, PushUnavailable, ResumeAhead
from gateway.push.subscription import Subscription
from gateway.push.updates import OrderUpdate

__all__ = ["Hub", "OrderNotFound", "OrderUpdate", "PushUnavailable", "ResumeAhead", "Subscription"]
