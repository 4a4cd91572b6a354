"""Bounded work per visitor: one heavy computation at a time per user, users served in turn,
and (in shared mode) the heaviest settings refused with a plain sentence.

Why: the compiled passes already run at most two at once per process, but nothing limited one
person's share, so one visitor's 50-sample map at the first layer (50 s) or a batch run slowed
every other visitor's first maps, and a person with several tabs could queue several.

How (``FairShare``):
- A user has at most one heavy computation in progress; a second one from the same user (another
  tab of a signed-in user) waits until it ends. It waits rather than cancelling the first: the
  engine can only stop at a progress tick, the first result may be what the other tab shows,
  and both land in the shared caches, so waiting loses no work.
- A computation runs only while it holds one of the process's ``turns`` (2, as many as the
  engine's compiled passes at once; a user holds at most one). A freed turn is handed to the first in the queue
  (no thread can barge in). Between steps (the progress callbacks the engine calls after each
  chunk of samples, each image, each Score-CAM batch) a running computation calls
  ``checkpoint()``: if someone waits who has run no more steps than it has, it gives its turn
  to them and queues again. The queue is ordered by steps run so far, then by arrival (least
  service first): computations that have run as many steps take turns round-robin, a step at
  a time, and a new, light request goes before the long ones, so it waits for at most the one
  step in progress.
- Turns are taken only inside a cache's compute function (after its per-key lock), and nothing
  inside a turn takes a cache lock, so the turns and the cache locks cannot deadlock; a nested
  computation of the same thread runs inside the turn it already holds.

The user id is ``dashboard.frame.auth.current_user_id()``; without sign-in (``"local"``) each
browser session is its own user.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dashboard.frame import auth
from explainers.errors import ExplainerError

SHARED_ENV = "EXPLAINERS_SHARED"  # "1": a server shared by many people (``--shared``)
MAX_SAMPLES_ENV = "EXPLAINERS_MAX_SAMPLES"  # noise samples allowed in shared mode
MAX_CHANNELS_ENV = "EXPLAINERS_MAX_CHANNELS"  # Score-CAM channels allowed in shared mode
TURNS_ENV = "EXPLAINERS_TURNS"  # heavy computations running at once in the process
DEFAULT_MAX_SAMPLES = 16
DEFAULT_MAX_CHANNELS = 64  # Score-CAM's own default (``explainers.methods.scorecam``)
#: A layer is "near the input" when its grid has at least 1/16 of the input's pixels (stride 4
#: or less: Xception's block1 and block2). A gradient item there costs 2-25 times one at the
#: last layer (docs/BENCHMARKS.md), so shared mode allows a quarter of the samples there.
NEAR_INPUT_FRACTION = 1 / 16


# --- shared-mode caps ---------------------------------------------------------------------------
def shared_mode() -> bool:
    """Whether this server is shared by many people (``EXPLAINERS_SHARED=1``, set by the
    server's ``--shared`` switch): the heaviest settings are then refused. Locally nothing is."""
    return os.environ.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, "")))
    except ValueError:
        return default


def max_samples() -> int | None:
    """Noise samples allowed per map (None: no cap, i.e. not shared mode)."""
    return _env_int(MAX_SAMPLES_ENV, DEFAULT_MAX_SAMPLES) if shared_mode() else None


def max_channels() -> int | None:
    """Score-CAM channels allowed (None: no cap, i.e. not shared mode)."""
    return max(1, _env_int(MAX_CHANNELS_ENV, DEFAULT_MAX_CHANNELS)) if shared_mode() else None


class Refused(ExplainerError):
    """A setting this shared server does not run; the message is the plain sentence shown."""


def near_input(grid: tuple | None, input_size: tuple | None) -> bool:
    """Whether a layer with this ``(h, w)`` grid is near the input of a ``(H, W)`` image."""
    if not grid or not input_size or None in tuple(grid)[:2] or None in tuple(input_size)[:2]:
        return False
    return grid[0] * grid[1] >= NEAR_INPUT_FRACTION * input_size[0] * input_size[1]


def check_settings(
    n_samples: int = 0,
    *,
    grid: tuple | None = None,
    input_size: tuple | None = None,
    channels: int | None = None,
    total_channels: int | None = None,
) -> None:
    """Raise ``Refused`` (with the sentence to show) for a setting too heavy for a shared
    server: noise samples beyond ``max_samples()`` (a quarter of it at a layer near the
    input), Score-CAM over more than ``max_channels()`` channels or over all of them
    (``channels`` None). Locally this never raises."""
    if not shared_mode():
        return
    cap = max_samples()
    if n_samples > cap:
        raise Refused(
            f"This shared server computes at most {cap} noise samples per map; "
            f"choose {cap} or fewer (you asked for {n_samples})."
        )
    early_cap = cap // 4
    if n_samples > early_cap and near_input(grid, input_size):
        raise Refused(
            f"At a layer this close to the input ({grid[0]}×{grid[1]} positions) this "
            f"shared server computes at most {early_cap} noise samples per map; choose "
            f"{early_cap} or fewer, or a later layer."
        )
    if total_channels is not None:
        k_cap = max_channels()
        wanted = total_channels if channels is None else min(int(channels), total_channels)
        if wanted > k_cap:
            raise Refused(
                f"This shared server runs Score-CAM over at most {k_cap} channels "
                f"(one forward pass each); choose K = {k_cap} or fewer "
                f"(you asked for {wanted} of {total_channels})."
            )


# --- the scheduler ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wait:
    """Why a computation waits: behind the same user's own (``own``: how many of theirs are
    ahead) or behind other people's (``others``: how many computations run or queue ahead)."""

    kind: str
    ahead: int

    def text(self) -> str:
        if self.kind == "own":
            return (
                "Your previous computation is still running; this one starts when it ends."
                if self.ahead <= 1
                else f"{self.ahead} of your computations are still running or waiting; this one "
                "starts when they end."
            )
        who = (
            "1 other person's computation is"
            if self.ahead == 1
            else f"{self.ahead} other people's computations are"
        )
        return (
            f"{who} ahead of yours; people take turns a step at a time, so yours starts "
            "within a few seconds per person."
        )


OnWait = Callable[["Wait | None"], None]


@dataclass(eq=False)
class _Ticket:
    user: str
    on_wait: OnWait | None = None
    granted: bool = False
    steps: int = 0  # steps run so far (checkpoints passed): the queue's order
    shown: Wait | None = field(default=None)


def default_turns() -> int:
    """``EXPLAINERS_TURNS``, else 2: the engine's ``PASS_SLOTS``, so that a new visitor's first
    step runs beside a long job's step instead of waiting for it to end (with 1 turn it waited
    for the whole of the long job's step: seconds at block1 on a busy 2-core machine)."""
    turns = _env_int(TURNS_ENV, 0)
    return turns if turns > 0 else 2


class FairShare:
    """One heavy computation per user at a time; ``turns`` of them run at once, handed out
    least service first, round-robin among equals (see the module docstring)."""

    def __init__(self, turns: int = 1, poll_s: float = 0.5) -> None:
        self.turns = max(1, int(turns))
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._own: dict[str, deque] = {}  # user -> their computations; the head is the active one
        self._queue: deque = deque()  # active computations waiting for a turn, in order
        self._holding: list = []  # computations holding a turn
        self._local = threading.local()  # the ticket of this thread's computation

    # -- what the page shows / tests read
    def status(self, user: str) -> Wait | None:
        """Why ``user``'s waiting computation waits (None: it runs or none waits)."""
        with self._cond:
            for ticket in self._own.get(user, ()):
                if not ticket.granted:
                    return self._why(ticket)
        return None

    def running_users(self) -> list[str]:
        with self._cond:
            return [t.user for t in self._holding]

    def _why(self, t: _Ticket) -> Wait | None:  # under the lock
        own = self._own.get(t.user, deque())
        if own and own[0] is not t:
            return Wait("own", list(own).index(t))
        if t.granted:
            return None
        place = list(self._queue).index(t) if t in self._queue else 0
        return Wait("others", place + len(self._holding))

    def _enqueue(self, t: _Ticket) -> None:  # under the lock: after those with as few steps
        at = next(
            (i for i, other in enumerate(self._queue) if other.steps > t.steps), len(self._queue)
        )
        self._queue.insert(at, t)

    def _grant(self) -> None:  # under the lock: hand free turns to the first in the queue
        while len(self._holding) < self.turns and self._queue:
            t = self._queue.popleft()
            t.granted = True
            self._holding.append(t)
        self._cond.notify_all()

    def _wait(self, t: _Ticket, ready: Callable[[], bool]) -> None:
        """Block until ``ready()``; tell ``t.on_wait`` why, whenever that changes (outside the
        lock: it draws on the page and may raise Streamlit's rerun, which the caller handles)."""
        while True:
            with self._cond:
                if ready():
                    why = None
                else:
                    why = self._why(t)
                    if why == t.shown:
                        self._cond.wait(self.poll_s)
                        why = None if ready() else self._why(t)
                if why is None and ready():
                    break
            if why != t.shown:
                t.shown = why
                if t.on_wait is not None:
                    t.on_wait(why)
        if t.shown is not None:
            t.shown = None
            if t.on_wait is not None:
                t.on_wait(None)

    @contextmanager
    def computation(self, user: str, on_wait: OnWait | None = None) -> Iterator[None]:
        """Run the block as ``user``'s heavy computation: after the user's earlier ones, in a
        turn. ``on_wait(Wait)`` is called while it waits, ``on_wait(None)`` when the wait ends.
        Always released, whatever the block or ``on_wait`` raises."""
        if getattr(self._local, "ticket", None) is not None:  # nested: already in a turn
            yield
            return
        t = _Ticket(user, on_wait)
        with self._cond:
            self._own.setdefault(user, deque()).append(t)
        try:
            self._wait(t, lambda: self._own[user][0] is t)
            with self._cond:
                self._enqueue(t)
                self._grant()
            self._wait(t, lambda: t.granted)
            self._local.ticket = t
            yield
        finally:
            self._local.ticket = None
            with self._cond:
                if t in self._queue:
                    self._queue.remove(t)
                if t in self._holding:
                    self._holding.remove(t)
                t.granted = False
                own = self._own.get(user)
                if own is not None and t in own:
                    own.remove(t)
                    if not own:
                        del self._own[user]
                self._grant()

    def checkpoint(self) -> None:
        """Between two steps of this thread's computation: if someone waits who has run no more
        steps than this one, give our turn to them and queue again (behind everyone with as
        few steps: round-robin among equals). A no-op outside a computation or when nobody
        waits, so it is cheap to call from every progress callback."""
        t = getattr(self._local, "ticket", None)
        if t is None:
            return
        with self._cond:
            t.steps += 1
            if not self._queue or t not in self._holding or self._queue[0].steps > t.steps:
                return
            self._holding.remove(t)
            t.granted = False
            self._enqueue(t)
            self._grant()
        self._wait(t, lambda: t.granted)


# --- the dashboard's use ------------------------------------------------------------------------
SCHEDULER = FairShare(default_turns())


def user_key() -> str:
    """The id the limits are keyed on: the signed-in user's, else this browser session's."""
    uid = auth.current_user_id()
    if uid != "local":
        return uid
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
    except Exception:
        ctx = None
    return f"session:{ctx.session_id}" if ctx is not None else "local"


@contextmanager
def heavy(scheduler: FairShare | None = None) -> Iterator[None]:
    """The block as this user's heavy computation (``FairShare.computation``); while it waits,
    a line on the page says why and how many people are ahead, removed when it starts."""
    import streamlit as st

    slot = []

    def on_wait(why: Wait | None) -> None:
        if why is None:
            if slot:
                slot[0].empty()
            return
        if not slot:
            slot.append(st.empty())
        slot[0].info(why.text(), icon=":material/hourglass_top:")

    try:
        with (scheduler or SCHEDULER).computation(user_key(), on_wait):
            yield
    finally:
        if slot:
            slot[0].empty()


def checkpoint() -> None:
    """``SCHEDULER.checkpoint()``: call between steps of a heavy computation (progress
    callbacks); ``loaders`` installs it before every compiled call of the engine too
    (``capture.set_before_pass``), so one-shot forward work hands its turn over as well."""
    SCHEDULER.checkpoint()
