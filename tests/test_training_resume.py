"""A training run killed mid-way and rerun continues from its last epoch, ending where an
uninterrupted run ends.

The killed run is a real subprocess (this module run as a script). It stops itself (SIGSTOP) right
after writing the resume state of epoch ``KILL_AFTER_EPOCH``, and the test then SIGKILLs it: on a
fast machine the tiny run finishes all its epochs between two polls, so a kill timed by polling
alone could arrive after the run had already ended.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest
import torch

from deepsalt.training import checkpoint
from deepsalt.training.checkpoint import RESUME, clear_resume, load_checkpoint, load_resume, save_resume
from deepsalt.training.config import TrainConfig
from deepsalt.training.stages import train_sau, train_teacher
from tests.support.training_data import make_data, tiny_config

EPOCHS = 16
KILL_AFTER_EPOCH = 2


def teacher_config(output: str) -> TrainConfig:
    return tiny_config(output, f"teacher.epochs={EPOCHS}", "teacher.patience=1000")


def _wait_until_stopped(proc: subprocess.Popen, deadline_s: float = 240) -> None:
    """Wait for the training subprocess to stop itself at the kill point."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
        if pid and os.WIFSTOPPED(status):
            return
        if pid:  # it exited instead
            proc.returncode = os.waitstatus_to_exitcode(status)
            pytest.fail(f"training subprocess ended before it could be killed:\n{proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("the training subprocess never reached the kill point")


def _stop_after_kill_epoch() -> None:
    """In the subprocess: stop this process right after the kill epoch's resume state is written."""
    from deepsalt.training import loop

    write = loop.save_resume

    def write_then_stop(url: str, state: dict) -> None:
        write(url, state)
        if state["epoch"] >= KILL_AFTER_EPOCH:
            os.kill(os.getpid(), signal.SIGSTOP)

    loop.save_resume = write_then_stop


def test_a_resume_state_write_killed_midway_leaves_the_previous_state_readable(tmp_path, monkeypatch):
    url = tmp_path / "stage"
    url.mkdir()
    save_resume(str(url), {"epoch": 3})
    write = checkpoint.write_bytes

    def killed_midway(target: str, payload: bytes) -> None:
        write(target, payload[: len(payload) // 2])
        raise KeyboardInterrupt  # the process dies with half the bytes written

    monkeypatch.setattr(checkpoint, "write_bytes", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        save_resume(str(url), {"epoch": 4})
    assert load_resume(str(url))["epoch"] == 3
    monkeypatch.undo()
    save_resume(str(url), {"epoch": 4})
    assert load_resume(str(url))["epoch"] == 4
    clear_resume(str(url))
    assert load_resume(str(url)) is None and list(url.iterdir()) == []


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path, caplog):
    data = make_data()
    sau = train_sau(data, tiny_config(str(tmp_path / "a")), str(tmp_path / "sau"))
    killed = str(tmp_path / "killed" / "teacher")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.test_training_resume", str(tmp_path / "killed"), sau],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_stopped(proc)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (Path(killed) / "meta.json").exists()
    interrupted_at = load_resume(killed)["epoch"]
    assert interrupted_at == KILL_AFTER_EPOCH

    with caplog.at_level(logging.INFO, logger="deepsalt"):
        train_teacher(data, teacher_config(str(tmp_path / "killed")), sau, killed)
    resumed = [r for r in caplog.records if r.getMessage() == "resuming"]
    assert [r.from_epoch for r in resumed] == [interrupted_at + 1]
    assert not (Path(killed) / RESUME).exists()  # cleaned up once the stage is done

    straight = train_teacher(
        data, teacher_config(str(tmp_path / "straight")), sau, str(tmp_path / "straight" / "teacher")
    )
    resumed_state, resumed_meta = load_checkpoint(killed, "teacher")
    straight_state, straight_meta = load_checkpoint(straight, "teacher")
    assert resumed_meta.metrics["epochs_run"] == straight_meta.metrics["epochs_run"] == EPOCHS
    for key in straight_state:
        torch.testing.assert_close(resumed_state[key], straight_state[key], rtol=1e-4, atol=1e-5)


def test_a_resume_state_round_trips_on_s3_and_is_cleared(s3):
    url = s3.url("runs/teacher")
    save_resume(url, {"epoch": 2})
    save_resume(url, {"epoch": 5})  # replaces the previous state
    assert load_resume(url)["epoch"] == 5
    clear_resume(url)
    assert load_resume(url) is None
    fs, path = fsspec.core.url_to_fs(url)
    assert fs.find(path) == []  # no partial state left behind either


if __name__ == "__main__":  # the process the test kills
    output, sau_url = sys.argv[1], sys.argv[2]
    _stop_after_kill_epoch()
    train_teacher(make_data(), teacher_config(output), sau_url, f"{output}/teacher")
