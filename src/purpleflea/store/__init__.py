"""History storage behind one small interface (:class:`Store`)."""

from purpleflea.store.base import Bucket, Page, Query, Store

__all__ = ["Bucket", "Page", "Query", "Store"]
