"""What the main process and its stream workers say to each other (``--stream-workers``).

Two socket pairs per worker, both private to the two processes:

- control (``SOCK_SEQPACKET``, one message per packet, both ways): :class:`Settings` once,
  then :class:`Open` (a connected client's socket rides along as ``SCM_RIGHTS``),
  :class:`Kick` (end a stream with a reason) from main; :class:`Ready` once, then
  :class:`Closed` and, every second with deliveries, :class:`Written` from the worker;
- batches (``SOCK_STREAM``, main to worker): every chunk the main fan-out reads from the bus,
  length-prefixed, each event as the frame bytes every client gets (encoded once, in main).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Callable

import msgspec

from purpleflea.bus.base import Message
from purpleflea.model import CascadeAlert, Liquidation
from purpleflea.server.filters import StreamFilter

#: The largest control message (a filter naming many markets still fits several times).
CONTROL_BYTES = 256 * 1024
#: Length prefix of one batch on the batch socket.
HEADER = struct.Struct("!I")


class Settings(msgspec.Struct, tag=True, frozen=True):
    """The worker's configuration, sent first (not on its command line: a store URL may
    hold a password, and a command line is readable by every local user)."""

    store: str
    heartbeat_s: float
    buffer_bytes: int
    #: The last seq main had published when the worker was started: its first live position.
    last_seq: int
    #: The REST rate limit (``--rate-limit``, ``--rate-burst``): a stream's replay from the
    #: store pays one request of its account per page read, here counted per worker.
    rate_per_s: float = 10.0
    rate_burst: float = 40.0


class Open(msgspec.Struct, tag=True, frozen=True):
    """Stream ``id`` is the socket sent with this message: already admitted by main, its
    WebSocket handshake done, its subscription read and checked."""

    id: int
    wanted: StreamFilter
    batch: int
    #: Client messages main had already read from the socket (a ping sent right after the
    #: subscribe message): the worker handles them first, as if it had read them.
    pending: list[str] = []
    #: The stream's account: its replay is paced by the account's rate limit.
    account: str = ""
    #: Main's live seq when it counted the stream open: a stream without ``since_seq`` goes
    #: on from it (:func:`~purpleflea.server.feed.first_seq`); None: from the worker's own.
    opened_seq: int | None = None


class Kick(msgspec.Struct, tag=True, frozen=True):
    """End stream ``id`` with ``reason`` (a close code name) and tell its client ``message``."""

    id: int
    reason: str
    message: str


class Ready(msgspec.Struct, tag=True, frozen=True):
    """The worker has opened the store and takes streams (main serves only after this)."""


class Closed(msgspec.Struct, tag=True, frozen=True):
    """Stream ``id`` ended (its client was told when the reason has a close code)."""

    id: int
    reason: str


class Written(msgspec.Struct, tag=True, frozen=True):
    """The worker's ``written`` stage latency since its last report (bucket counts, sum):
    main adds it to the histogram ``/v1/metrics`` shows."""

    counts: list[int]
    total: float


Control = Settings | Open | Kick | Ready | Closed | Written

_control_decoder = msgspec.msgpack.Decoder(Control)
_batch_decoder = msgspec.msgpack.Decoder(list[tuple[str, int, bytes, float]])


class _LiquidationFrame(msgspec.Struct):
    data: Liquidation


class _CascadeFrame(msgspec.Struct):
    data: CascadeAlert


_liquidation_frame = msgspec.json.Decoder(_LiquidationFrame)
_cascade_frame = msgspec.json.Decoder(_CascadeFrame)


class Outbox:
    """Control messages to one peer, sent in order and never dropped: what the socket has no
    room for yet (a busy peer) waits here and goes when it is writable (a lost kick would
    leave a revoked key's stream open; a lost close report, an account's slot taken)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._waiting: deque[bytes] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def send(self, message: Control) -> None:
        self._waiting.append(encode_control(message))
        if len(self._waiting) == 1:
            self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            try:
                self.sock.send(self._waiting[0])
            except BlockingIOError:
                loop.add_writer(self.sock.fileno(), self._flush)
                return
            except OSError:  # the peer is gone: it learns nothing more
                self._waiting.clear()
                break
            self._waiting.popleft()
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_writer(self.sock.fileno())


def encode_control(message: Control) -> bytes:
    return msgspec.msgpack.encode(message)


def decode_control(data: bytes) -> Control:
    message: Control = _control_decoder.decode(data)
    return message


async def read_packets(
    sock: socket.socket, on_packet: Callable[[bytes, list[int]], None], *, max_fds: int = 0
) -> None:
    """Hand every packet the non-blocking control socket ``sock`` receives to ``on_packet``
    (its bytes, and the descriptors that rode along: at most ``max_fds``), in order, until the
    peer is gone: it closed its end, or the socket failed (a reset peer says no more either).
    Both sides' control loop: main reading its worker's reports, a worker reading main."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(sock.fileno(), readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            while True:  # everything that is there now: one wake-up may be many packets
                try:
                    if max_fds:
                        data, fds, _, _ = socket.recv_fds(sock, CONTROL_BYTES, max_fds)
                    else:
                        data, fds = sock.recv(CONTROL_BYTES), []
                except BlockingIOError:
                    break
                except OSError:
                    return
                if not data:
                    return
                on_packet(data, fds)
    finally:
        loop.remove_reader(sock.fileno())


def encode_batch(messages: list[Message]) -> bytes:
    """One chunk for the batch socket, its length prefix included."""
    body = msgspec.msgpack.encode([(m.channel, m.seq, m.data, m.published) for m in messages])
    return HEADER.pack(len(body)) + body


def decode_batch(body: bytes) -> list[Message]:
    """The messages of one batch body (its prefix already read), payloads decoded again from
    their frames: the worker filters on them like the main process does."""
    messages = []
    for channel, seq, data, published in _batch_decoder.decode(body):
        payload: Liquidation | CascadeAlert
        if channel == "liquidations":
            payload = _liquidation_frame.decode(data).data
        else:
            payload = _cascade_frame.decode(data).data
        messages.append(Message(channel, seq, payload, data, published))
    return messages
