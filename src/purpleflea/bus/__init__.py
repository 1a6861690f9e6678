"""Message fan-out behind one small interface (:class:`Bus`)."""

from purpleflea.bus.base import Bus, Message, Subscription, SubscriptionClosed

__all__ = ["Bus", "Message", "Subscription", "SubscriptionClosed"]
