"""The real ``tinspect`` command in a pseudo-terminal: start, navigate by keys, quit.

pexpect gives the PTY and pyte renders what the app writes, so the assertions are on the
screen a user would see (not on widget state).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pyte
import pytest

from .conftest import FIXTURES

COLUMNS, LINES = 100, 30


class Terminal:
    def __init__(self, args: list[str]) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        env = {
            **os.environ,
            "TINSPECT_CACHE_DIR": "off",
            "TERM": "xterm-256color",
            "COLUMNS": str(COLUMNS),
            "LINES": str(LINES),
        }
        exe = str(Path(sys.executable).with_name("tinspect"))
        self.child = pexpect.spawn(exe, args, dimensions=(LINES, COLUMNS), env=env, timeout=20)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def pump(self) -> None:
        try:
            while True:
                data = self.child.read_nonblocking(65536, timeout=0.05)
                self.stream.feed(data)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def wait_for(self, *needles: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            text = self.text()
            if all(n in text for n in needles):
                return text
        raise AssertionError(f"{needles} not on screen after {timeout} s:\n{self.text()}")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.child.send(key)
            time.sleep(0.15)


UP, DOWN, ENTER, ESC = "\x1b[A", "\x1b[B", "\r", "\x1b"


@pytest.mark.slow
def test_navigate_and_quit_in_a_real_terminal() -> None:
    term = Terminal([str(FIXTURES / "digits"), "--refresh", "0"])
    try:
        screen = term.wait_for("dense_baseline", "vae_25_75_fixed", "tools")
        assert "L3" in screen
        term.keys(ENTER)  # the cursor starts on the first model
        screen = term.wait_for("hidden_1", "L2")
        term.keys(DOWN, ENTER)
        screen = term.wait_for("L1", "variable kernel", "top-")
        term.keys("t")
        term.wait_for("tools for")
        term.keys("h")
        screen = term.wait_for("Histogram", "epoch 3")
        term.keys(ESC, ESC)  # up to L2, then L3
        term.wait_for("L3")
        term.keys("q")
        term.child.expect(pexpect.EOF, timeout=10)
    finally:
        term.child.close(force=True)
    assert term.child.exitstatus == 0


@pytest.mark.slow
def test_a_missing_logdir_fails_cleanly_in_a_terminal(tmp_path: Path) -> None:
    term = Terminal([str(tmp_path / "nope")])
    term.child.expect(pexpect.EOF, timeout=20)
    output = term.child.before.decode()
    term.child.close()
    assert "is not a directory" in output and "Traceback" not in output
    assert term.child.exitstatus == 1
