"""The replica's console output: Monitor text and log lines as Renode's --plain console prints them
("HH:MM:SS.ffff [LEVEL] source: message", FormattedTextBackend.cs)."""
from __future__ import annotations

import sys
import threading
import time

out_lock = threading.Lock()


def say(text: str) -> None:
    with out_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def log(level: str, source: str, message: str) -> None:
    t = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 10000) % 10000:04d}"
    say(f"{stamp} [{level}] {source}: {message}")
