"""The HTTP routes, one module per resource. `{name:id}` in a path matches a UUID only, so a
literal sibling (`/bookings/reserve`, `/payments/webhook`) is never taken for an id: a wrong
method on it is 405 with Allow, not 404 "no such booking"."""

from __future__ import annotations

import uuid

from starlette.convertors import Convertor, register_url_convertor


class IdConvertor(Convertor[str]):
    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def convert(self, value: str) -> str:
        return str(uuid.UUID(value))

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdConvertor())
