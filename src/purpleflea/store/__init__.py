"""History storage behind one small interface (:class:`Store`)."""

from purpleflea.store.base import Bucket, OpenInterest, Page, Query, Store

__all__ = ["Bucket", "OpenInterest", "Page", "Query", "Store"]
