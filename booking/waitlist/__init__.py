"""The waitlist of a sold-out event: seats that come back are offered, in join order, as timed
one-time offers before they return to open sale (see docs/architecture.md, "The waitlist").
Its scripts' facade is `booking.inventory.waitlist` (built by `Scripts`); here are the
use-cases (`service`), the worker's step (`ticker`) and the buyer's stream (`stream`)."""

from booking.waitlist.ticker import WaitlistTicker

__all__ = ["WaitlistTicker"]
