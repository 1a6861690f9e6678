"""How the client commands (``tail``, ``history``, ``heatmap``) reach a server.

The server is ``--url``, else ``$PURPLEFLEA_URL``, else the one ``purpleflea serve`` recorded
in the data folder (``data/server.json``: a server on another port is found without a flag),
else the SDK's default, ``http://127.0.0.1:8000``. Before the command starts, the server's
health route must answer within :data:`PROBE_TIMEOUT_S`; otherwise, and for any error the
command meets, it prints one line saying what to do and exits with status 2, never a
traceback and never a silent wait (the SDK's stream would retry forever, as a long-lived
agent wants).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from purpleflea.local_server import FILE_NAME, find_address
from purpleflea.stopping import run_stoppable

#: Seconds the whole reachability check may take: a command fails within 3 s.
PROBE_TIMEOUT_S = 2.5


class Unreachable(Exception):
    """No server answered at the address the command was given or found."""


def add_connection_args(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """``--url``, ``--api-key`` and ``--data-dir``. ``defaults=False`` adds them to a command's
    actions too (``webhooks list --url ...``): unset there, they keep the command's values."""
    unset: Any = None if defaults else argparse.SUPPRESS
    parser.add_argument(
        "--url",
        default=unset,
        help="server URL (default: $PURPLEFLEA_URL, else the server recorded in "
        f"DATA_DIR/{FILE_NAME}, else http://127.0.0.1:8000)",
    )
    parser.add_argument("--api-key", default=unset, help="API key (default $PURPLEFLEA_API_KEY)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data") if defaults else argparse.SUPPRESS,
        help="the local server's data folder, where it records its address (default ./data)",
    )


def server_url(args: argparse.Namespace) -> tuple[str | None, str]:
    """The URL to use (None: the SDK's default) and where it came from, for error lines."""
    if args.url:
        from purpleflea.client._config import server_urls  # noqa: PLC0415 - with the SDK

        server_urls(args.url, name="--url")  # a wrong one is refused naming the flag
        return args.url, "--url"
    if os.environ.get("PURPLEFLEA_URL"):
        return None, "$PURPLEFLEA_URL"  # the SDK reads it (commas: several servers)
    found = find_address(args.data_dir)
    if found is not None:
        return found, f"recorded in {args.data_dir / FILE_NAME}"
    return None, f"the default; no running server recorded in {args.data_dir / FILE_NAME}"


async def probe(servers: tuple[str, ...], origin: str) -> None:
    """Return once one of ``servers`` answers its health route; raise :class:`Unreachable`
    (naming the address, where it came from and what to do) when none does in time."""
    import httpx  # noqa: PLC0415 - loaded with the SDK, only when a command runs

    reasons = []
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S / len(servers)) as http:
        for url in servers:
            try:
                await http.get(url + "/v1/health")
                return  # any HTTP answer: a server is there (the command reports the rest)
            except httpx.TimeoutException:
                reasons.append(f"{url}: no answer")
            except httpx.TransportError as exc:
                reasons.append(f"{url}: {_reason(exc)}")
    raise Unreachable(
        f"no Purple Flea server answers ({'; '.join(reasons)}; {origin}): start one with "
        "`purpleflea serve`, or pass --url URL or set PURPLEFLEA_URL"
    )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text


#: The SDK's missing-key message names its ``api_key=`` argument; a command has a flag.
_NO_KEY = (
    "no API key: pass --api-key KEY or set PURPLEFLEA_API_KEY (get one with "
    "`purpleflea keys create --account you` in the server's folder, or POST /v1/keys)"
)


def _refused_by(exc: Exception, reached: list[str]) -> str:
    """``exc``'s message with the server that refused the key and how it was found."""
    where = f"the server at {reached[0]}" if reached else "the server"
    return f"{where} refused the key: {exc}; a key works only on the server that issued it"


Work = Callable[[str | None], Coroutine[Any, Any, int]]


def run_client(name: str, args: argparse.Namespace, work: Work) -> int:
    """Run a client command's ``work(url)`` after checking the server answers; every error
    becomes one line on stderr and exit status 2."""
    import httpx  # noqa: PLC0415
    import websockets  # noqa: PLC0415

    from purpleflea.client import (  # noqa: PLC0415
        AuthenticationError,
        LiquidationClient,
        PurpleFleaError,
    )

    reached: list[str] = []  # the servers asked and where their address came from

    async def checked() -> int:
        url, origin = server_url(args)
        servers = LiquidationClient(base_url=url).servers
        reached.append(f"{', '.join(servers)} ({origin})")
        await probe(servers, origin)
        return await work(url)

    try:
        return run_stoppable(checked())
    except AuthenticationError as exc:
        # A key is good on the server that issued it only: with its own server stopped, the
        # command asks the default one, and "not valid" alone sent the user to the key.
        if exc.code == "missing_api_key":
            message = _NO_KEY
        elif exc.code == "malformed_api_key":  # refused before any server saw it
            message = str(exc)
        else:
            message = _refused_by(exc, reached)
    except PurpleFleaError as exc:
        message = str(exc)
    except (Unreachable, ValueError) as exc:
        message = str(exc)
    except BrokenPipeError:
        raise  # our reader left (`| head`), not the server: the dispatcher stops quietly
    except (httpx.HTTPError, websockets.WebSocketException, OSError) as exc:
        # The server went away or misbehaved after it answered the probe.
        message = f"lost the server: {exc or type(exc).__name__}"
    print(f"purpleflea {name}: {message}", file=sys.stderr)
    return 2
