"""The per-user fair scheduler (``dashboard.frame.fair_share``): deterministic with threads and
events, no model and no Streamlit run; and the shared-mode caps."""

import threading
import time

import pytest

from dashboard.frame import fair_share
from dashboard.frame.fair_share import FairShare, Refused, Wait, check_settings

LIMIT = 10  # seconds any step may take before the test calls it a deadlock


def until(predicate, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class Job:
    """One computation on its own thread: logs 'start'/'end' (and each step) and runs a step
    each time ``go`` is set; ``waits`` records what ``on_wait`` was told."""

    def __init__(
        self, fs: FairShare, user: str, name: str, log: list, steps: int = 1, fail: bool = False
    ) -> None:
        self.fs, self.user, self.name, self.log = fs, user, name, log
        self.steps, self.fail = steps, fail
        self.go = threading.Event()
        self.waits: list = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self.fs.computation(self.user, self.waits.append):
                self.log.append(f"{self.name} start")
                for step in range(self.steps):
                    assert self.go.wait(LIMIT), f"{self.name} never told to go"
                    self.go.clear()
                    if self.fail:
                        raise ValueError("the computation failed")
                    self.log.append(f"{self.name} step {step}")
                    self.fs.checkpoint()
                self.log.append(f"{self.name} end")
        except BaseException as exc:
            self.error = exc

    def start(self) -> "Job":
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(LIMIT)
        assert not self.thread.is_alive(), f"{self.name} still running: deadlock"


def waiting_job(fs, user, name, log, **kw) -> Job:
    """A job started and seen waiting (its first ``on_wait`` arrived)."""
    job = Job(fs, user, name, log, **kw).start()
    until(lambda: job.waits, f"{name} to wait")
    return job


def test_other_users_request_is_served_before_the_same_users_second():
    fs, log = FairShare(turns=1, poll_s=0.01), []
    a1 = Job(fs, "A", "A1", log).start()
    until(lambda: "A1 start" in log, "A1 to start")
    a2 = waiting_job(fs, "A", "A2", log)
    b = waiting_job(fs, "B", "B", log)
    assert a2.waits[0] == Wait("own", 1)
    assert a2.waits[0].text() == (
        "Your previous computation is still running; this one starts when it ends."
    )
    assert b.waits[0] == Wait("others", 1)
    assert fs.running_users() == ["A"]
    a1.go.set()
    until(lambda: "B start" in log, "B to start")
    assert "A2 start" not in log  # A's second waits for B, who asked before it could queue
    b.go.set()
    until(lambda: "A2 start" in log, "A2 to start")
    a2.go.set()
    for job in (a1, a2, b):
        job.join()
        assert job.error is None
    # A1's step ends in a checkpoint that hands the turn to B, B's hands it back to A1 (both
    # have run one step); A1's end hands the turn to B, waiting, before A2 can even queue
    assert log == [
        "A1 start",
        "A1 step 0",
        "B start",
        "B step 0",
        "A1 end",
        "B end",
        "A2 start",
        "A2 step 0",
        "A2 end",
    ]
    assert b.waits[-1] is None and a2.waits[-1] is None  # the message is removed when it starts


def test_a_light_request_waits_one_step_of_a_long_computation_not_all_of_it():
    fs, log = FairShare(turns=1, poll_s=0.01), []
    heavy = Job(fs, "A", "A", log, steps=5).start()
    until(lambda: "A start" in log, "A to start")
    heavy.go.set()
    until(lambda: "A step 0" in log, "A's first step")
    light = waiting_job(fs, "B", "B", log)
    assert light.waits == [Wait("others", 1)]
    # A's next checkpoint hands the turn over; B, with fewer steps run, then goes on to its end.
    heavy.go.set()
    until(lambda: "B start" in log, "B to start")
    assert log[-2:] == ["A step 1", "B start"]
    light.go.set()
    deadline = time.monotonic() + LIMIT
    while heavy.thread.is_alive() and time.monotonic() < deadline:
        if not heavy.go.is_set():
            heavy.go.set()
        time.sleep(0.005)
    heavy.join()
    light.join()
    assert log.index("A step 1") < log.index("B start") < log.index("B end") < log.index("A step 2")
    assert log[-1] == "A end" and heavy.error is None and light.error is None


def drive(*jobs: Job) -> None:
    """Let every job take its steps as soon as it can, until all have ended."""
    deadline = time.monotonic() + LIMIT
    while any(j.thread.is_alive() for j in jobs) and time.monotonic() < deadline:
        for j in jobs:
            if not j.go.is_set():
                j.go.set()
        time.sleep(0.005)
    for j in jobs:
        j.join()
        assert j.error is None


def test_two_long_computations_take_turns_a_step_each_once_level():
    fs, log = FairShare(turns=1, poll_s=0.01), []
    a = Job(fs, "A", "A", log, steps=4).start()
    until(lambda: "A start" in log, "A")
    a.go.set()
    until(lambda: "A step 0" in log, "A's first step")
    e = waiting_job(fs, "E", "E", log, steps=4)
    drive(a, e)
    # E catches up on A's lead (A had run 2 steps when E started), then they alternate
    assert log == [
        "A start",
        "A step 0",
        "A step 1",
        "E start",
        "E step 0",
        "E step 1",
        "A step 2",
        "E step 2",
        "A step 3",
        "E step 3",
        "A end",
        "E end",
    ]


def test_queue_positions_count_the_people_ahead():
    fs, log = FairShare(turns=1, poll_s=0.01), []
    a = Job(fs, "A", "A", log).start()
    until(lambda: "A start" in log, "A to start")
    b = waiting_job(fs, "B", "B", log)
    c = waiting_job(fs, "C", "C", log)
    assert b.waits == [Wait("others", 1)] and fs.status("B") == Wait("others", 1)
    assert c.waits == [Wait("others", 2)] and fs.status("C") == Wait("others", 2)
    assert c.waits[0].text().startswith("2 other people's computations are ahead of yours")
    assert Wait("others", 1).text().startswith("1 other person's computation is ahead of yours")
    a.go.set()
    until(lambda: "B start" in log, "B to start")
    until(lambda: len(c.waits) > 1, "C's new position")
    assert c.waits[-1] == Wait("others", 1)  # moved up when A finished
    b.go.set()
    until(lambda: "C start" in log, "C to start")
    c.go.set()
    for job in (a, b, c):
        job.join()
    assert fs.running_users() == [] and fs.status("C") is None


def test_two_turns_run_two_users_at_once_but_never_two_of_one_user():
    fs, log = FairShare(turns=2, poll_s=0.01), []
    a1 = Job(fs, "A", "A1", log).start()
    until(lambda: "A1 start" in log, "A1")
    a2 = waiting_job(fs, "A", "A2", log)
    b = Job(fs, "B", "B", log).start()
    until(lambda: "B start" in log, "B to start beside A1")
    assert sorted(fs.running_users()) == ["A", "B"] and "A2 start" not in log
    for job in (a1, b):
        job.go.set()
    until(lambda: "A2 start" in log, "A2")
    a2.go.set()
    for job in (a1, a2, b):
        job.join()


def test_a_computation_that_raises_releases_its_turn():
    fs, log = FairShare(turns=1, poll_s=0.01), []
    a = Job(fs, "A", "A", log, fail=True).start()
    until(lambda: "A start" in log, "A")
    b = waiting_job(fs, "B", "B", log)
    a2 = waiting_job(fs, "A", "A2", log)
    a.go.set()
    a.join()
    assert isinstance(a.error, ValueError)
    until(lambda: "B start" in log, "B after A failed")
    b.go.set()
    until(lambda: "A2 start" in log, "A's next computation after its failure")
    a2.go.set()
    for job in (b, a2):
        job.join()
        assert job.error is None
    assert fs.running_users() == []


def test_a_wait_interrupted_by_a_rerun_withdraws_from_the_queue():
    """Streamlit stops a run by raising inside a page call: here ``on_wait`` raises."""
    fs, log = FairShare(turns=1, poll_s=0.01), []

    class Rerun(BaseException):
        pass

    a = Job(fs, "A", "A", log).start()
    until(lambda: "A start" in log, "A")
    errors = []

    def interrupted():
        def on_wait(why):
            raise Rerun()

        try:
            with fs.computation("B", on_wait):
                log.append("B ran")
        except Rerun:
            errors.append("rerun")

    t = threading.Thread(target=interrupted)
    t.start()
    t.join(LIMIT)
    assert errors == ["rerun"] and fs.status("B") is None
    c = waiting_job(fs, "C", "C", log)
    assert c.waits[0] == Wait("others", 1)  # B is gone from the queue
    a.go.set()
    until(lambda: "C start" in log, "C")
    c.go.set()
    for job in (a, c):
        job.join()
    assert "B ran" not in log


def test_nested_computation_of_the_same_thread_does_not_deadlock():
    fs = FairShare(turns=1)
    with fs.computation("A"), fs.computation("A"):
        fs.checkpoint()
    assert fs.running_users() == []


def test_checkpoint_outside_a_computation_is_a_no_op():
    FairShare().checkpoint()


# --- shared-mode caps ---------------------------------------------------------------------------
def test_local_mode_refuses_nothing(monkeypatch):
    monkeypatch.delenv(fair_share.SHARED_ENV, raising=False)
    assert not fair_share.shared_mode() and fair_share.max_samples() is None
    check_settings(50, grid=(126, 126), input_size=(254, 254), channels=None, total_channels=2048)


def test_shared_mode_refuses_the_heaviest_settings_with_a_sentence(monkeypatch):
    monkeypatch.setenv(fair_share.SHARED_ENV, "1")
    monkeypatch.delenv(fair_share.MAX_SAMPLES_ENV, raising=False)
    assert fair_share.max_samples() == 16
    check_settings(16, grid=(8, 8), input_size=(254, 254))
    with pytest.raises(
        Refused,
        match=r"^This shared server computes at most 16 noise samples "
        r"per map; choose 16 or fewer \(you asked for 17\)\.$",
    ):
        check_settings(17, grid=(8, 8), input_size=(254, 254))
    # block1_conv1 of the 254-pixel Xception: 126×126 ≥ 254²/16, so a quarter of the cap
    check_settings(4, grid=(126, 126), input_size=(254, 254))
    with pytest.raises(Refused, match=r"126×126 positions.*at most 4 noise samples"):
        check_settings(5, grid=(126, 126), input_size=(254, 254))
    check_settings(16, grid=(32, 32), input_size=(254, 254))  # block4: not near the input
    with pytest.raises(Refused, match=r"Score-CAM over at most 64 channels.*2048 of 2048"):
        check_settings(0, channels=None, total_channels=2048)
    check_settings(0, channels=64, total_channels=2048)
    monkeypatch.setenv(fair_share.MAX_SAMPLES_ENV, "8")
    with pytest.raises(Refused, match="at most 8 noise samples"):
        check_settings(9)


def test_user_key_is_the_signed_in_id_or_one_per_session(monkeypatch):
    from dashboard.frame import auth

    assert auth.current_user_id() == "local"
    assert fair_share.user_key() == "local"  # no Streamlit session here
    monkeypatch.setattr(auth, "current_user_id", lambda: "ana@clinic")
    assert fair_share.user_key() == "ana@clinic"
