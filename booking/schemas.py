"""Request bodies, validated with pydantic; a failure becomes 422 invalid_request naming fields."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from booking.domain import MAX_TICKETS_PER_REQUEST

# PostgreSQL refuses a NUL in text (a 500 if it got that far); the other control characters have
# no business in names, venues or seat labels either.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "password":
            return value  # hashed, never stored or shown as text
        for text in value if isinstance(value, list) else (value,):
            if isinstance(text, str) and _CONTROL_CHARACTERS.search(text):
                raise ValueError("must not contain control characters")
        return value


class RegisterBody(Body):
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    name: str = Field(min_length=1, max_length=200)


class LoginBody(Body):
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=512)


class ZoneBody(Body):
    name: str = Field(min_length=1, max_length=100)
    capacity: int | None = Field(default=None, ge=1, le=1_000_000)
    price_minor: int = Field(ge=0, le=100_000_000)
    seats: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        default=None, min_length=1, max_length=20_000
    )

    @field_validator("seats")
    @classmethod
    def unique_labels(cls, seats: list[str] | None) -> list[str] | None:
        if seats is not None:
            if len(set(seats)) != len(seats):
                raise ValueError("seat labels must be unique within a zone")
            if any(":" in label for label in seats):
                raise ValueError("seat labels may not contain ':'")
        return seats

    @model_validator(mode="after")
    def capacity_matches_seats(self) -> ZoneBody:
        if self.seats is None:
            if self.capacity is None:
                raise ValueError("a general-admission zone needs a capacity")
            return self
        if self.capacity is not None and self.capacity != len(self.seats):
            raise ValueError("capacity of a seated zone must equal its number of seats")
        self.capacity = len(self.seats)
        return self


class QueueBody(Body):
    enabled: bool = False
    max_concurrent: int = Field(default=100, ge=1, le=100_000)
    release_per_tick: int = Field(default=50, ge=1, le=100_000)
    pass_ttl_s: int = Field(default=120, ge=5, le=3600)


class EventBody(Body):
    name: str = Field(min_length=1, max_length=200)
    venue: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime
    sale_starts_at: AwareDatetime
    max_per_user: int = Field(ge=1, le=100)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    zones: list[ZoneBody] = Field(min_length=1, max_length=50)
    queue: QueueBody = Field(default_factory=QueueBody)

    @model_validator(mode="after")
    def sale_before_show(self) -> EventBody:
        if self.sale_starts_at > self.starts_at:
            raise ValueError("sale_starts_at must not be after starts_at")
        names = [zone.name for zone in self.zones]
        if len(set(names)) != len(names):
            raise ValueError("zone names must be unique within an event")
        return self


class QueuePatchBody(Body):
    max_concurrent: int | None = Field(default=None, ge=1, le=100_000)
    release_per_tick: int | None = Field(default=None, ge=1, le=100_000)
    paused: bool | None = None


class ReserveBody(Body):
    event_id: UUID
    zone_id: UUID
    quantity: int | None = Field(default=None, ge=1, le=MAX_TICKETS_PER_REQUEST)
    seats: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        default=None, min_length=1, max_length=MAX_TICKETS_PER_REQUEST
    )

    @field_validator("seats")
    @classmethod
    def no_duplicates(cls, seats: list[str] | None) -> list[str] | None:
        if seats is not None and len(set(seats)) != len(seats):
            raise ValueError("duplicate seats")
        return seats

    @model_validator(mode="after")
    def quantity_or_seats(self) -> ReserveBody:
        if (self.quantity is None) == (self.seats is None):
            raise ValueError("give either quantity (general admission) or seats (seated)")
        return self
