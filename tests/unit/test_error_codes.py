"""Every error code the code can raise or answer is in the one problem table (common/problems.py):
a code missing there would turn a clear 4xx into a KeyError, that is a 500."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import booking
import gateway
from booking.errors import BookingError
from common.problems import CODES

ROOT = Path(__file__).resolve().parents[2]
LITERAL_CODE = re.compile(r"problem_(?:response|body)\(\s*\"([a-z_]+)\"")


def _import_everything() -> None:
    for package in (booking, gateway):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)


def _subclasses(cls: type[BookingError]) -> set[type[BookingError]]:
    found = set(cls.__subclasses__())
    for sub in tuple(found):
        found |= _subclasses(sub)
    return found


def test_every_domain_error_has_a_problem_code() -> None:
    _import_everything()
    classes = _subclasses(BookingError) | {BookingError}
    assert len(classes) > 20
    missing = {cls.__name__: cls.code for cls in classes if cls.code not in CODES}
    assert missing == {}


def test_every_literal_problem_code_is_in_the_table() -> None:
    used: dict[str, str] = {}
    for directory in ("booking", "gateway", "common", "workers"):
        for path in (ROOT / directory).rglob("*.py"):
            for code in LITERAL_CODE.findall(path.read_text()):
                used[code] = str(path.relative_to(ROOT))
    assert len(used) > 5
    assert {code: where for code, where in used.items() if code not in CODES} == {}
