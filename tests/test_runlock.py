"""xpnet.runlock: the lock of a run directory, its liveness probe (which must never send a real
signal) and the exclusive-file lock that stands in where there is no ``flock``.

A second process refused while training, and the lock held around a run, are tested with the
checkpoints (tests/test_checkpoint.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from xpnet import runlock
from xpnet.runlock import LOCK_NAME, RunInUseError, RunLock, describe_holder, process_alive


@pytest.fixture
def sleeper():
    """A live process that is not this one (a child sleeping), killed and reaped afterwards."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.fixture
def kills(monkeypatch):
    """os.kill replaced by a recorder: only the harmless probe (signal 0) reaches the real
    os.kill, any other signal is recorded and never sent, so a wrong probe kills nothing."""
    sent = []
    real = os.kill

    def record(pid, sig):
        sent.append((pid, sig))
        if sig == 0:
            real(pid, 0)

    monkeypatch.setattr(runlock.os, "kill", record)
    return sent


def test_the_probe_finds_a_live_foreign_process_with_signal_zero(sleeper, kills):
    """A live process of another pid is alive, found with signal 0 only: guards the probe's
    `os.kill(pid, 0)` against any real signal (`os.kill(pid, 1)` would hang it up)."""
    assert process_alive(sleeper.pid)
    assert kills == [(sleeper.pid, 0)]
    assert sleeper.poll() is None  # still running


def test_the_probe_finds_a_finished_process_dead_and_itself_alive(kills):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    assert not process_alive(child.pid)
    assert kills == [(child.pid, 0)]
    assert process_alive(os.getpid())
    assert kills == [(child.pid, 0)]  # this process is alive without asking


def test_a_process_the_probe_may_not_signal_counts_as_alive(monkeypatch):
    """PermissionError (another user's process): it exists, so it is alive."""
    def refuse(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(runlock.os, "kill", refuse)
    assert process_alive(12345)


def test_describe_holder_names_what_the_record_has():
    assert describe_holder({}) == "a process that is starting"
    assert describe_holder({"pid": 7}) == "pid 7"
    assert describe_holder({"pid": 7, "host": "h", "started": "then", "command": "xpnet train"}) \
        == "pid 7 on h, started then, running `xpnet train`"
    assert describe_holder({"pid": 7, "command": "c"}) == "pid 7, running `c`"


def test_the_lock_is_reentrant_and_its_file_goes_with_the_outermost_release(tmp_path):
    outer, inner = RunLock(tmp_path), RunLock(tmp_path)
    assert not outer.held
    outer.release()  # not held: nothing to do
    with outer:
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid()
        assert record["command"]
        assert record["started"]
        with inner:
            assert inner.held
            assert outer.held
        assert not inner.held
        assert (tmp_path / LOCK_NAME).exists()  # the outer holder still has it
    assert not outer.held
    assert not (tmp_path / LOCK_NAME).exists()
    inner.release()  # twice: nothing happens
    with RunLock(tmp_path):  # free again
        pass


def test_a_lock_held_by_another_process_is_refused_naming_it(tmp_path):
    script = (f"import sys, time; sys.path.insert(0, {os.getcwd()!r}); "
              f"from xpnet.runlock import RunLock; RunLock({str(tmp_path)!r}).acquire(); "
              "print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(RunInUseError, match=f"in use by another run \\(pid {child.pid}") as err:
            RunLock(tmp_path).acquire()
        assert err.value.holder["pid"] == child.pid
        assert err.value.folder == tmp_path
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    with RunLock(tmp_path):  # the kill released it
        pass


# --------------------------------------------------------------------------- without flock


def test_without_flock_a_lock_file_of_a_dead_process_is_taken_over(tmp_path, kills):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    path = tmp_path / LOCK_NAME
    path.write_text(json.dumps({"pid": child.pid}))
    fd = runlock._take_exclusive(path)
    try:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        os.close(fd)
    assert kills == [(child.pid, 0)]


def test_without_flock_a_lock_file_of_a_live_process_is_refused(tmp_path, sleeper, kills):
    path = tmp_path / LOCK_NAME
    path.write_text(json.dumps({"pid": sleeper.pid, "host": "there"}))
    with pytest.raises(RunInUseError, match=f"pid {sleeper.pid} on there"):
        runlock._take_exclusive(path)
    assert json.loads(path.read_text())["pid"] == sleeper.pid  # left alone
    assert all(sig == 0 for _, sig in kills)
    path.write_text("{not json")  # a holder still writing its record: in use, not stale
    with pytest.raises(RunInUseError, match="a process that is starting"):
        runlock._take_exclusive(path)


def test_without_flock_the_lock_works_through_runlock(tmp_path, monkeypatch):
    """Where `import fcntl` fails, RunLock falls back to the exclusive file."""
    monkeypatch.setitem(sys.modules, "fcntl", None)
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_the_recorder_fixture_never_sends_a_real_signal(sleeper, kills):
    """The fixture's own guarantee: a non-zero signal is recorded, not sent."""
    runlock.os.kill(sleeper.pid, signal.SIGKILL)
    assert kills == [(sleeper.pid, signal.SIGKILL)]
    assert sleeper.poll() is None


def test_the_lock_as_a_context_manager_gives_itself(tmp_path):
    with RunLock(tmp_path) as lock:
        assert isinstance(lock, RunLock)
        assert lock.held


def test_releasing_a_lock_this_process_no_longer_records_is_harmless(tmp_path):
    """A lock whose entry is gone from the process's table releases without error and without
    touching the file it no longer records."""
    lock = RunLock(tmp_path).acquire()
    key = lock._key
    entry = runlock._HELD.pop(key)
    try:
        lock.release()
        assert not lock.held
        assert (tmp_path / LOCK_NAME).exists()
    finally:
        runlock._HELD[key] = entry
        lock._key = key
        lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_file_replaced_again_and_again_is_given_up_as_in_use(tmp_path, monkeypatch):
    """If the lock file is replaced by its holder every time this process opens it (the inode
    never matches), taking it gives up after 100 tries with RunInUseError, not a lock."""
    def replaced(path, *args, **kwargs):
        raise FileNotFoundError(path)

    monkeypatch.setattr(runlock.os, "stat", replaced)
    with pytest.raises(RunInUseError, match="in use by another run"):
        RunLock(tmp_path).acquire()
    assert os.path.realpath(tmp_path / LOCK_NAME) not in runlock._HELD
