"""Prefixed, per-line console output for several child processes, plus one log file each."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, TextIO

_COLOURS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)
_RESET = "\033[0m"


class Console:
    """Writes `name | line` to `stream`, aligned, coloured only when `stream` is a terminal."""

    def __init__(self, stream: TextIO, width: int = 9) -> None:
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()
        self._colours: dict[str, int] = {}
        try:
            self.colour = stream.isatty()
        except (AttributeError, ValueError):
            self.colour = False

    def widen(self, names: list[str]) -> None:
        self.width = max([self.width, *(len(name) for name in names)])

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.colour:
            code = self._colours.setdefault(name, _COLOURS[len(self._colours) % len(_COLOURS)])
            prefix = f"\033[{code}m{prefix}{_RESET}"
        with self._lock:
            try:
                self.stream.write(f"{prefix} {text}\n")
                self.stream.flush()
            except (OSError, ValueError):  # console gone (closed pipe): the log files still get it
                pass


class LogSink:
    """One append-mode log file per process name under `logs_dir`, flushed per line."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def write(self, name: str, text: str) -> None:
        with self._lock:
            handle = self._files.get(name)
            if handle is None:
                self.logs_dir.mkdir(parents=True, exist_ok=True)
                handle = self._files[name] = open(self.path(name), "a", encoding="utf-8")
            handle.write(text + "\n")
            handle.flush()

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()


class Output:
    def __init__(self, console: Console, logs: LogSink) -> None:
        self.console = console
        self.logs = logs

    def line(self, name: str, text: str) -> None:
        self.console.line(name, text)
        self.logs.write(name, text)

    def pump(self, name: str, stream: IO[bytes]) -> threading.Thread:
        """Copy a child's output line by line until it closes; returns the started thread."""

        def copy() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    self.line(name, raw.decode(errors="replace").rstrip("\r\n"))

        thread = threading.Thread(target=copy, name=f"pump-{name}", daemon=True)
        thread.start()
        return thread
