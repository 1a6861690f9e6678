"""Pure engines over the event stream: cascade scoring and alerts (and the heatmap model)."""

from purpleflea.engine.cascade import CascadeConfig, CascadeEngine

__all__ = ["CascadeConfig", "CascadeEngine"]
