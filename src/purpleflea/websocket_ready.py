"""Every whole message a websockets connection already holds, taken at once per wakeup.

For high message rates, on both ends of our streams: one ``recv()`` per message is a chain of
three coroutines even when the message is already there (bench/crash_ingest.py, where the
tracker reads a venue; bench/sdk_receive.py, where the SDK reads the tracker).
"""

from __future__ import annotations

from collections import deque

from websockets.asyncio.client import ClientConnection
from websockets.frames import Opcode


def take_ready(ws: ClientConnection) -> list[str | bytes]:
    """The whole messages ``ws`` has already received, in order, taken without waiting: what
    successive ``recv()`` calls would return before they had to wait, minus their coroutines.

    Reads the buffer of websockets' asyncio connection (``recv_messages``, its ``Assembler``);
    takes only unfragmented text and binary messages and leaves anything else (a fragment, text
    that is not UTF-8) at the head of the buffer, for ``recv()`` to handle as it does. Returns
    ``[]`` when that buffer is not laid out as expected (another websockets version), so the
    caller simply goes on with ``recv()``.
    """
    assembler = getattr(ws, "recv_messages", None)
    queue = getattr(getattr(assembler, "frames", None), "queue", None)
    resume = getattr(assembler, "maybe_resume", None)
    if not isinstance(queue, deque) or not callable(resume):
        return []
    if getattr(assembler, "get_in_progress", True):
        return []
    taken: list[str | bytes] = []
    while queue:
        frame = queue[0]
        if not getattr(frame, "fin", False):
            break
        opcode = getattr(frame, "opcode", None)
        if opcode is Opcode.TEXT:
            try:
                taken.append(frame.data.decode())
            except UnicodeDecodeError:
                break  # recv() fails the connection with the right close code
        elif opcode is Opcode.BINARY:
            taken.append(bytes(frame.data))
        else:
            break
        queue.popleft()
    if taken:
        resume()  # reading below the low-water mark resumes the socket
    return taken
