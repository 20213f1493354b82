"""Workers import only public surfaces of `booking` (issue 13).

Every module under workers/ is parsed with `ast`; each `import` / `from ... import` must follow:
1. No underscore names: no imported name and no module path part starts with `_` (dunder
   parts such as `__future__` excepted).
2. `booking.*` is reached only through
   - a package's public surface: `from booking.<pkg> import name` where `booking/<pkg>/` is a
     package, and `name` is listed in its `__init__`'s `__all__`;
   - a flat top-level module `booking/<name>.py` (`from booking import errors`,
     `from booking.messaging import Envelope`), where an ALL_CAPS name (a module-level
     constant, a metric) is allowed only when that module lists it in its `__all__`.
   Anything inside a package (`booking.payments.store`, `booking.store.bookings`,
   `booking.inventory.keys`, ...) is internal: importing it, or a name from it, fails.
Other packages (`common`, `workers`, third-party) are checked for rule 1 only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOKING = ROOT / "booking"


def _all_of(path: Path) -> frozenset[str] | None:
    """The names of the module's `__all__` (None when it has none)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return frozenset(value)
    return None


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _constant(name: str) -> bool:
    return name.isupper() and any(c.isalpha() for c in name)


@dataclass(frozen=True)
class Where:
    kind: str  # "surface" (a package's __init__), "flat" (booking/<x>.py), "internal", "root"
    path: Path | None


def _classify(module: str) -> Where:
    parts = module.split(".")
    if parts == ["booking"]:
        return Where("root", BOOKING / "__init__.py")
    relative = Path(*parts[1:])
    package = BOOKING / relative
    if (package / "__init__.py").exists():
        return Where("surface" if len(parts) == 2 else "internal", package / "__init__.py")
    flat = BOOKING / relative.with_suffix(".py")
    if flat.exists() and len(parts) == 2:
        return Where("flat", flat)
    return Where("internal", flat if flat.exists() else None)


def violations(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(_private(p) for p in alias.name.split(".")):
                    found.append(f"import {alias.name}: underscore name")
                elif alias.name.split(".")[0] == "booking":
                    where = _classify(alias.name)
                    if where.kind == "internal":
                        found.append(f"import {alias.name}: a package's internals")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                found.append(f"from {'.' * node.level}{module}: relative import")
                continue
            if any(_private(p) for p in module.split(".")):
                found.append(f"from {module}: underscore module")
                continue
            names = [alias.name for alias in node.names]
            for name in names:
                if _private(name):
                    found.append(f"from {module} import {name}: underscore name")
            if module.split(".")[0] != "booking":
                continue
            found.extend(_booking_violations(module, names))
    return found


def _booking_violations(module: str, names: list[str]) -> list[str]:
    where = _classify(module)
    if where.kind == "internal":
        return [f"from {module} import {', '.join(names)}: a package's internals"]
    if where.kind == "root":
        # Only flat modules of the booking package itself (`from booking import errors`).
        return [
            f"from booking import {name}: not a flat module of booking"
            for name in names
            if not (BOOKING / f"{name}.py").exists()
        ]
    assert where.path is not None
    public = _all_of(where.path)
    if where.kind == "surface":
        return [
            f"from {module} import {name}: not in {module}.__all__"
            for name in names
            if public is None or name not in public
        ]
    return [
        f"from {module} import {name}: a constant {module} does not list in __all__"
        for name in names
        if _constant(name) and (public is None or name not in public)
    ]


WORKER_MODULES = sorted((ROOT / "workers").rglob("*.py"))


def test_there_are_worker_modules_to_check() -> None:
    names = {path.name for path in WORKER_MODULES}
    assert {"saga_step.py", "saga_orchestrator.py", "seat_release.py", "consumer.py"} <= names


@pytest.mark.parametrize("path", WORKER_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_workers_import_only_public_surfaces(path: Path) -> None:
    assert violations(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from booking.payments.saga import STEP_CONFIRM",
        "from booking.payments import saga",  # a submodule, not in __all__
        "from booking.payments import store as payment_store",
        "from booking.store.bookings import due_reserved",
        "from booking.store import bookings",
        "import booking.inventory.keys",
        "from booking.inventory.keys import LIVE_EVENTS",
        "from booking.messaging import TOPIC_NOTIFICATIONS",  # flat, but no __all__ lists it
        "from booking.domain import _rfc3339",
        "from common.redis_client import _redacted",
        "from booking import payments",  # a package, not a flat module
        "from .consumer import ConsumerWorker",
    ],
)
def test_the_rules_catch_reaching_into_internals(source: str) -> None:
    assert violations(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from booking.payments import STEP_CONFIRM, advance_saga",
        "from booking.inventory import LIVE_EVENTS, Scripts",
        "from booking.store import claim_message",
        "from booking.domain import EXPIRED",  # listed in booking.domain.__all__
        "from booking.metrics import SAGA_STEPS",  # listed in booking.metrics.__all__
        "from booking.messaging import Envelope, add_to_outbox",
        "from booking import errors",
        "from workers.consumer import POOL_CLOSE_S",
        "from __future__ import annotations",
    ],
)
def test_the_rules_let_public_surfaces_through(source: str) -> None:
    assert violations(source) == []
