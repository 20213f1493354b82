"""Request bodies, validated with pydantic; a failure becomes 422 invalid_request naming fields."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from booking.domain import MAX_TICKETS_PER_REQUEST
from booking.tickets.codes import MAX_CODE_LENGTH

# PostgreSQL refuses a NUL in text (a 500 if it got that far); the other control characters have
# no business in names, venues or seat labels either.
_CONTROL = r"\x00-\x1f\x7f"
_CONTROL_CHARACTERS = re.compile(f"[{_CONTROL}]")
# Documented in the OpenAPI document so a client (or a fuzzer) knows what the server accepts:
# text has a visible character and no control character; a seat label has no ':' (the key
# separator in Redis) and no surrounding blanks.
PLAIN_PATTERN = rf"^[^{_CONTROL}]*$"
TEXT_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
LABEL_PATTERN = rf"^[^\s:{_CONTROL}](?:[^:{_CONTROL}]*[^\s:{_CONTROL}])?$"
_LABEL = re.compile(LABEL_PATTERN)


def _visible_text(value: str) -> str:
    """Checked as sent (lengths included), then stored without surrounding blanks."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


def _seat_label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError("a seat label has no ':', control character or surrounding blank")
    return value


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer: 2.0 is the integer 2; 2.5, "2" and true are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Refused by email-validator whatever the options (".test" is allowed in test mode); said in the
# document too, spelled case-blind for regex engines without flags.
_REFUSED_DOMAINS = ("local", "localhost", "invalid", "onion", "arpa")


def _case_blind(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" for c in word)


EMAIL_PATTERN = "^(?!.*[@.](?:{})$).*$".format("|".join(_case_blind(d) for d in _REFUSED_DOMAINS))


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None


Email = Annotated[
    str,
    Field(
        max_length=320,
        description="special-use domains other than .test (.local, .invalid, ...) are refused",
        json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
    ),
    AfterValidator(_email),
]


def _text(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length, json_schema_extra={"pattern": TEXT_PATTERN})


Plain = Annotated[str, Field(json_schema_extra={"pattern": PLAIN_PATTERN})]
Name = Annotated[str, _text(200), AfterValidator(_visible_text)]
ZoneName = Annotated[str, _text(100), AfterValidator(_visible_text)]
Reason = Annotated[str, _text(500), AfterValidator(_visible_text)]
Label = Annotated[
    str,
    Field(min_length=1, max_length=32, json_schema_extra={"pattern": LABEL_PATTERN}),
    AfterValidator(_seat_label),
]


def one_of(first: str, second: str, *, titles: tuple[str, str]) -> Any:
    """The OpenAPI form of "exactly one of these two fields" (what the model validator enforces)."""

    def variant(given: str, absent: str, title: str) -> dict[str, Any]:
        return {
            "title": title,
            "required": [given],
            "properties": {given: {"not": {"type": "null"}}, absent: {"type": "null"}},
        }

    def extra(schema: dict[str, Any]) -> None:
        schema["oneOf"] = [
            variant(first, second, titles[0]),
            variant(second, first, titles[1]),
        ]

    return extra


INTEGER_FIELDS = (
    "capacity",
    "price_minor",
    "max_concurrent",
    "release_per_tick",
    "pass_ttl_s",
    "max_per_user",
    "quantity",
    "offer_ttl_s",
)


class Body(BaseModel):
    # strict: a number is not a string, a bool is not a number; no surplus fields.
    model_config = ConfigDict(extra="forbid", strict=True)

    # Only on the integer fields: a before-validator on a UUID or datetime field would make it
    # miss strict mode's parsing of JSON strings.
    @field_validator(*INTEGER_FIELDS, mode="before", check_fields=False)
    @classmethod
    def whole_numbers(cls, value: Any) -> Any:
        return _whole_number(value)

    @field_validator("*", mode="after")
    @classmethod
    def no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "password":
            return value  # taken exactly as typed; hashed, never stored or shown as text
        for text in value if isinstance(value, list) else (value,):
            if isinstance(text, str) and _CONTROL_CHARACTERS.search(text):
                raise ValueError("must not contain control characters")
        return value


class RegisterBody(Body):
    email: Email
    password: str = Field(min_length=8, max_length=256)
    name: Name


class LoginBody(Body):
    # Not EmailStr: an account created by an operator may use a special-use domain
    # (admin@booking-rush.local) that registration refuses; a wrong address is just 401.
    email: Plain = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(Body):
    refresh_token: Plain = Field(min_length=1, max_length=512)


class ZoneBody(Body):
    model_config = ConfigDict(
        json_schema_extra=one_of("capacity", "seats", titles=("General admission", "Seated"))
    )

    name: ZoneName
    capacity: int | None = Field(default=None, ge=1, le=1_000_000)
    price_minor: int = Field(ge=0, le=100_000_000)
    seats: list[Label] | None = Field(
        default=None, min_length=1, max_length=20_000, json_schema_extra={"uniqueItems": True}
    )

    @field_validator("seats")
    @classmethod
    def unique_labels(cls, seats: list[str] | None) -> list[str] | None:
        if seats is not None:
            if len(set(seats)) != len(seats):
                raise ValueError("seat labels must be unique within a zone")
        return seats

    @model_validator(mode="after")
    def capacity_or_seats(self) -> ZoneBody:
        if self.seats is None:
            if self.capacity is None:
                raise ValueError("a general-admission zone needs a capacity")
            return self
        if self.capacity is not None:
            raise ValueError("a seated zone's capacity is its number of seats: leave capacity out")
        self.capacity = len(self.seats)
        return self


class QueueBody(Body):
    enabled: bool = False
    max_concurrent: int = Field(default=100, ge=1, le=100_000)
    release_per_tick: int = Field(default=50, ge=1, le=100_000)
    pass_ttl_s: int = Field(default=120, ge=5, le=3600)


class WaitlistBody(Body):
    enabled: bool = True
    offer_ttl_s: int = Field(default=300, ge=30, le=86_400)


class WaitlistPatchBody(Body):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    enabled: bool | None = None
    offer_ttl_s: int | None = Field(default=None, ge=30, le=86_400)

    @model_validator(mode="after")
    def something_to_change(self) -> WaitlistPatchBody:
        if not self.model_fields_set:
            raise ValueError("give enabled and/or offer_ttl_s")
        return self


class WaitlistJoinBody(Body):
    zone_id: UUID | None = Field(default=None, description="null: any zone of the event")
    quantity: int = Field(ge=1, le=MAX_TICKETS_PER_REQUEST)


class EventBody(Body):
    name: Name
    venue: Name
    starts_at: AwareDatetime
    sale_starts_at: AwareDatetime
    max_per_user: int = Field(ge=1, le=100)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    zones: list[ZoneBody] = Field(min_length=1, max_length=50)
    queue: QueueBody = Field(default_factory=QueueBody)
    waitlist: WaitlistBody = Field(default_factory=WaitlistBody)

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
    model_config = ConfigDict(
        json_schema_extra=one_of("quantity", "seats", titles=("General admission", "Seated"))
    )

    event_id: UUID
    zone_id: UUID
    quantity: int | None = Field(default=None, ge=1, le=MAX_TICKETS_PER_REQUEST)
    seats: list[Label] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TICKETS_PER_REQUEST,
        json_schema_extra={"uniqueItems": True},
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


class JoinBody(Body):
    event_id: UUID


class UnsuspendBody(Body):
    model_config = ConfigDict(
        json_schema_extra=one_of("seats", "quantity", titles=("Seated", "General admission"))
    )

    zone_id: UUID
    seats: list[Label] | None = Field(
        default=None, min_length=1, max_length=1000, json_schema_extra={"uniqueItems": True}
    )
    quantity: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def seats_or_quantity(self) -> UnsuspendBody:
        if (self.seats is None) == (self.quantity is None):
            raise ValueError("give either seats (seated zone) or quantity (general admission)")
        return self


class SuspendBody(UnsuspendBody):
    reason: Reason


class PaymentBody(Body):
    booking_id: UUID
    test_outcome: Literal["succeed", "decline", "no_answer"] | None = None


class CheckInBody(Body):
    code: str = Field(
        min_length=1,
        max_length=MAX_CODE_LENGTH,
        description="the ticket's code, as its QR code or the booking's `tickets` list shows it",
        json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$"},
    )
