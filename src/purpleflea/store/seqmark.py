"""The seq high-water mark beside a SQLite store: a seq published once is never given again.

A SQLite store can come back shorter than it was: with ``synchronous=NORMAL`` (the default)
a power loss can take its last committed transactions, and a damaged ``-wal`` file makes
SQLite open it, silently, at the last good transaction before the damage. The events of that
lost tail were already published (streams, webhooks), so numbering again from the store's
last seq would give their seqs to new events, and a client resuming from a cursor it got
before would skip those new events without a word.

So the node keeps, in its own file beside the store (``<store file>.seqmark``), a mark that
is always at or above every seq it published:

- **Reserved ahead.** Before a seq past the mark is published, the mark is raised to that
  seq plus ``ahead`` (10,000 by default): one small atomic write (temp file, fsync, rename,
  fsync of the folder) per ``ahead`` seqs, not per batch.
- **Exact at a clean stop.** :meth:`SeqMark.finish` writes the last seq itself, and the
  store's last seq then, so a clean stop and start continue with no gap.
- **Checked at start.** :meth:`SeqMark.start` compares the mark with the store's last seq and
  numbering continues after the higher of the two: below the mark, the seqs in between are
  skipped (a gap, which readers tolerate: duplicates dropped by id leave gaps too), never
  given again. Below the seq the store held when the mark was last written (at a clean stop
  or when it was raised), that is a store that lost its tail: logged once as an ERROR and
  reported in ``/v1/health`` and ``/v1/metrics``. After a crash (no clean stop) with the
  store at or above that seq, the skipped seqs are the unused rest of the reservation: a
  warning. After a clean stop with the store as it was then, they are a gap skipped at an
  earlier start, with nothing stored since (not a new loss): logged at INFO.

- **Beside the same store file.** The mark names the store file it was written beside (its
  inode, and the inode's generation number where the file system keeps one: a file written
  in place of a removed one, as tar restores it, mostly gets the freed inode number on
  ext4). A store and its mark restored together from a backup agree with each other, both
  old: the seqs the node published after the backup would be given again, and a client
  resuming from a cursor it got then would skip the new events without a word. A restored
  (or copied, or moved) store is a new file, so :meth:`SeqMark.start` refuses it
  (:class:`StoreReplaced`), naming what to do: start once with a seq floor
  (``purpleflea serve --seq-floor N``: numbering continues after ``N`` or the mark, the
  higher), N at or above every seq clients may have seen; 0 when nothing was published
  since the copy (a clean stop, then a move). Not caught: a restore that keeps inodes (a
  file-system or VM snapshot rolled back in place).

No file (a store written by an earlier release, or a new one) starts from the store's last
seq, as before; a mark of an earlier release names no store file and is taken as it is. The
mark is written with no fsync of the store: it records what was published, and a seq is
published only after its batch is stored.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from purpleflea.store.file_guard import file_generation, file_identity, write_durably

log = logging.getLogger("purpleflea.seqmark")

#: The mark file's name after the store file's: ``purpleflea.sqlite.seqmark``.
SUFFIX = ".seqmark"
#: Seqs reserved per write of the mark.
DEFAULT_AHEAD = 10_000


class BadSeqMark(ValueError):
    """A mark file that is not one this module wrote (the message names the file)."""


@dataclass(frozen=True, slots=True)
class Mark:
    """What the mark file says.

    ``seq``: at or above every seq published. ``clean``: written at a clean stop, so ``seq``
    is exactly the last one. ``stored``: the highest seq the store held (and had published)
    when the mark was written: a store that reopens below it lost its tail for certain.
    """

    seq: int
    clean: bool
    stored: int
    #: The inode of the store file the mark was written beside (None: an earlier release's
    #: mark, or no store file yet).
    store_ino: int | None = None
    #: That inode's generation number (None: a mark of an earlier release, or a file system
    #: that keeps none): a file put in the old one's place can get its freed inode number.
    store_gen: int | None = None


class StoreReplaced(ValueError):
    """The store file is not the one its seq mark was written beside (restored from a
    backup, copied or moved): numbering from either could give a published seq again."""


@dataclass(frozen=True, slots=True)
class StartCheck:
    """How the store's last seq compared with the mark at start (``/v1/health``)."""

    store_last_seq: int
    mark: int
    #: Seqs skipped at start: ``mark - store_last_seq`` when the store is below the mark.
    skipped: int
    #: Whether the store certainly lost published events (the rest: see :class:`Mark`).
    lost_tail: bool
    clean_stop: bool


def mark_floor(store_file: str | Path) -> int:
    """The mark beside the SQLite store ``store_file`` (0: none). A bulk writer (``import``,
    ``sim``: the server is stopped, the folder's writer lock held) numbers after the higher of
    it and the store's last seq, so it gives no published seq again either; the next start
    then finds the store above the mark. Raises :class:`StoreReplaced` for a mark written
    beside another store file (a serve with ``--seq-floor`` settles it first)."""
    mark = SeqMark.beside(store_file)
    found = None if mark is None else mark.verified()
    return 0 if found is None else found.seq


class SeqMark:
    """The mark file of one SQLite store (see the module docstring). Thread-safe: the pipeline
    raises the mark from a worker thread, so its fsyncs do not stall the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        ahead: int = DEFAULT_AHEAD,
        store_file: Path | None = None,
        floor: int | None = None,
    ) -> None:
        if ahead < 1:
            raise ValueError(f"seq mark {path}: ahead must be at least 1, got {ahead}")
        if floor is not None and floor < 0:
            raise ValueError(f"seq mark {path}: the seq floor must be >= 0, got {floor}")
        self.path = path
        self.ahead = ahead
        #: The store file the mark stands beside (its inode is recorded in each write).
        self.store_file = store_file
        #: The operator's ``--seq-floor``: numbering continues after at least it, and a store
        #: file other than the mark's is accepted (:class:`StoreReplaced`).
        self.floor = floor
        #: The mark as last written (or read): every seq up to it may be published.
        self.reserved = 0
        #: Times the mark file was written (each an fsync of it and of its folder).
        self.writes = 0
        self.check: StartCheck | None = None
        self._lock = threading.Lock()

    @classmethod
    def beside(
        cls, store_file: str | Path, *, ahead: int = DEFAULT_AHEAD, floor: int | None = None
    ) -> SeqMark | None:
        """The mark of the SQLite store file ``store_file``; None for ``:memory:`` (nothing
        outlives the process, so there is nothing to guard)."""
        if str(store_file) == ":memory:":
            return None
        path = Path(store_file)
        return cls(path.with_name(path.name + SUFFIX), ahead=ahead, store_file=path, floor=floor)

    def _store_ino(self) -> int | None:
        identity = None if self.store_file is None else file_identity(self.store_file)
        return None if identity is None else identity[1]

    def _store_gen(self) -> int | None:
        return None if self.store_file is None else file_generation(self.store_file)

    def verified(self) -> Mark | None:
        """:meth:`read`, refusing (:class:`StoreReplaced`) a mark written beside another store
        file than the one at its path now, unless a seq floor was given."""
        mark = self.read()
        # A mark at seq 0 handed out no seq: no store, restored or new, can give one again (a
        # store file deleted beside the mark of a server that never published was refused
        # until --seq-floor 0).
        if mark is None or mark.store_ino is None or self.floor is not None or mark.seq == 0:
            return mark
        now = self._store_ino()
        if now is None:
            return mark
        gen = self._store_gen() if mark.store_gen is not None else None
        if now == mark.store_ino and (gen is None or gen == mark.store_gen):
            return mark
        found = f"inode {now}" if gen is None else f"inode {now} generation {gen}"
        had = f"{mark.store_ino}" + ("" if gen is None else f" generation {mark.store_gen}")
        raise StoreReplaced(
            f"seq mark {self.path}: the store {self.store_file} is not the file this mark was "
            f"written beside ({found}, the mark's {had}): restored from a "
            "backup, copied, moved, or removed and made anew. A restored store would give "
            "again the seqs published after the backup, and clients resuming past them would "
            "skip new events. Start the server once with purpleflea serve --seq-floor N (then "
            "imports and sims number after it too): numbering continues after the higher of N "
            f"and this mark's seq {mark.seq}, so N is the highest seq clients may have seen "
            "(the last one published: a client's cursor, a webhook's, a log line) when the "
            "mark was restored with the store; --seq-floor 0 if not (the store alone "
            "removed, or nothing published since the copy: a clean stop, then a move)"
        )

    def read(self) -> Mark | None:
        """The mark file's content; None when there is none. Raises :class:`BadSeqMark` naming
        the file when it is not a mark this module wrote."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            body = json.loads(text)
            mark = Mark(
                seq=body["seq"],
                clean=body["clean"],
                stored=body["stored"],
                store_ino=body.get("store_ino"),
                store_gen=body.get("store_gen"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadSeqMark(
                f"seq mark {self.path}: not a seq mark ({exc!r}; content {text[:80]!r}). It "
                "says which seqs this node already published; if the store was never served "
                "from another copy, delete it to number from the store's last seq"
            ) from None
        numbers = (
            mark.seq,
            mark.stored,
            0 if mark.store_ino is None else mark.store_ino,
            0 if mark.store_gen is None else mark.store_gen,
        )
        if not all(isinstance(v, int) and v >= 0 for v in numbers):
            raise BadSeqMark(f"seq mark {self.path}: seqs must be whole numbers >= 0: {text!r}")
        return mark

    def start(self, store_last_seq: int) -> int:
        """The seq to number after: the store's last, or the mark when the store is below it
        (logged, and kept in :attr:`check`)."""
        mark = self.verified()
        if self.floor is not None:
            mark = self._take_floor(mark, store_last_seq)
        if mark is None or mark.seq <= store_last_seq:
            self.reserved = store_last_seq
            return store_last_seq
        skipped = mark.seq - store_last_seq
        # Only a store below what it held when the mark was written lost anything: above it,
        # the gap is a reservation left unused by a crash, or one skipped at an earlier start
        # that nothing was stored after before a clean stop (a restart after a crash, no event
        # since: the next start took that for a lost tail, an ERROR, every time).
        # A store below the operator's floor lacks seqs clients may have seen (a restored
        # backup): the mark raised to the floor keeps the old mark's ``stored``, the backup's.
        below_floor = self.floor is not None and store_last_seq < self.floor
        lost = store_last_seq < mark.stored or below_floor
        self.check = StartCheck(store_last_seq, mark.seq, skipped, lost, mark.clean)
        self.reserved = mark.seq
        if below_floor and store_last_seq >= mark.stored:  # the mark alone sees no loss
            log.error(
                "history store ends at seq %d, below the seq floor given (--seq-floor %d: at "
                "or above every seq clients may have seen): it lacks up to %d seqs of "
                "published events (a store restored from a backup); numbering continues at "
                "seq %d so no seq a client saw is given again (clients resume past the gap). "
                "Restore the events from a later backup if you have one.",
                store_last_seq,
                self.floor,
                (self.floor or 0) - store_last_seq,
                mark.seq + 1,
            )
        elif mark.clean and lost:
            log.error(
                "history store ends at seq %d but held seq %d when this node stopped cleanly "
                "(at seq %d): the store lost its last %d seqs of published events (a power "
                "loss with synchronous=NORMAL, a damaged -wal file, or a store file restored "
                "from a backup); numbering continues at seq %d so no seq a client saw is given "
                "again (clients resume past the gap). Restore the events from a backup if you "
                "have one.",
                store_last_seq,
                mark.stored,
                mark.seq,
                mark.stored - store_last_seq,
                mark.seq + 1,
            )
        elif mark.clean:
            log.info(
                "numbering continues at seq %d, after the last seq of the clean stop: the %d "
                "seqs above the store's last seq %d were skipped at an earlier start with "
                "nothing stored since (or stored and never published): no published event "
                "is missing",
                mark.seq + 1,
                skipped,
                store_last_seq,
            )
        elif lost:
            log.error(
                "history store ends at seq %d but held seq %d before this node stopped "
                "without a clean shutdown: it lost its tail, between %d and %d seqs of "
                "published events (a power loss with synchronous=NORMAL, a damaged -wal file, "
                "or a store file restored from a backup); numbering continues after the "
                "reserved seq %d so no seq a client saw is given again",
                store_last_seq,
                mark.stored,
                mark.stored - store_last_seq,
                skipped,
                mark.seq,
            )
        else:
            log.warning(
                "this node did not stop cleanly: numbering continues after its reserved seq "
                "%d, skipping the %d unused seqs above the store's last seq %d (if the store "
                "also lost its tail, those events are among them)",
                mark.seq,
                skipped,
                store_last_seq,
            )
        return mark.seq

    def _take_floor(self, mark: Mark | None, store_last_seq: int) -> Mark:
        """The mark raised to the operator's seq floor, written at once beside this store
        file (so the next start, and bulk writers, take it without the floor). A store below
        it is then reported as one that lost its tail (a restored backup is one)."""
        assert self.floor is not None
        found = mark if mark is not None else Mark(seq=0, clean=False, stored=store_last_seq)
        raised = Mark(
            seq=max(self.floor, found.seq),
            clean=found.clean or self.floor > found.seq,
            stored=found.stored,
        )
        log.warning(
            "seq floor %d given: the mark (%s) is now %d beside %s; the store ends at seq %d",
            self.floor,
            "none" if mark is None else mark.seq,
            raised.seq,
            self.store_file,
            store_last_seq,
        )
        with self._lock:
            self._write(raised)
        return raised

    def needs(self, seq: int) -> bool:
        """Whether publishing ``seq`` needs the mark raised first (:meth:`reserve`)."""
        return seq > self.reserved

    def reserve(self, seq: int, stored: int) -> None:
        """Raise the mark to ``seq + ahead`` (``stored``: the store's last seq now, all of it
        published). Blocking: an fsync of the file and its folder."""
        with self._lock:
            if seq <= self.reserved:
                return
            self._write(Mark(seq=seq + self.ahead, clean=False, stored=stored))

    def finish(self, last_seq: int, stored: int | None = None) -> None:
        """A clean stop: the mark becomes exactly ``last_seq`` (at or above every seq
        published), so the next start continues right after it. ``stored``: the store's last
        seq now, all of it published (``last_seq`` when not given); below ``last_seq`` when a
        gap was skipped at start and nothing was stored since."""
        held = last_seq if stored is None else min(stored, last_seq)
        with self._lock:
            self._write(Mark(seq=last_seq, clean=True, stored=held))

    def _write(self, mark: Mark) -> None:
        fields: dict[str, int | bool] = {"seq": mark.seq, "clean": mark.clean}
        fields["stored"] = mark.stored
        store_ino = self._store_ino()
        if store_ino is not None:
            fields["store_ino"] = store_ino
            store_gen = self._store_gen()
            if store_gen is not None:
                fields["store_gen"] = store_gen
        # Durable: without the folder's fsync a power loss could bring back the old mark
        # (below seqs already published).
        write_durably(self.path, (json.dumps(fields) + "\n").encode())
        self.reserved = mark.seq
        self.writes += 1

    def metrics(self) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
        """``/v1/metrics`` families (the server's ``MetricFamily`` shape)."""
        check = self.check
        return [
            (
                "seq_mark_skipped_at_start",
                "gauge",
                "Seqs skipped at start because the history store ended below the seq mark "
                "(published before, or reserved and unused after a crash): never given again.",
                [("", float(0 if check is None else check.skipped))],
            ),
            (
                "store_lost_tail",
                "gauge",
                "1 when the history store came back without events it had published (power "
                "loss, damaged -wal file, restored backup): numbering went on past them.",
                [("", 1.0 if check is not None and check.lost_tail else 0.0)],
            ),
            (
                "seq_mark_writes_total",
                "counter",
                "Writes of the seq mark file (each an fsync of it and of its folder).",
                [("", float(self.writes))],
            ),
        ]

    def health(self) -> dict[str, object]:
        """For ``/v1/health``: the file, the mark, and what the start found."""
        check = self.check
        return {
            "file": str(self.path),
            "reserved_seq": self.reserved,
            "skipped_at_start": 0 if check is None else check.skipped,
            "store_lost_tail": check is not None and check.lost_tail,
        }
