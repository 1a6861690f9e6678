"""``GET /v1/heatmap/{market}?source=measured``: the measured map, or why there is none."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import QueryParams
from starlette.responses import Response

from purpleflea.server import http

if TYPE_CHECKING:  # the samplers' module is only loaded when sampling is on
    from purpleflea.server.measured import MeasuredMaps


def measured_heatmap(maps: MeasuredMaps | None, market: str, params: QueryParams) -> Response:
    """The measured map of ``market`` (``low``, ``high``, ``bucket`` as for the estimate);
    404 when sampling is off or has no mark and open interest of the market yet."""
    if maps is None:
        return http.error_response(
            404,
            "not_found",
            f"no measured heatmap for {market!r}: position sampling is off "
            "(purpleflea serve --sample-positions)",
        )
    low = http.optional_number(params, "low", positive=True)
    high = http.optional_number(params, "high", positive=True)
    bucket = http.optional_number(params, "bucket", positive=True)
    try:
        found = maps.heatmap(market, low=low, high=high, bucket=bucket)
    except LookupError as exc:
        return http.error_response(404, "not_found", str(exc))
    except ValueError as exc:
        raise http.BadRequest(str(exc)) from None
    return http.json_response(found)
