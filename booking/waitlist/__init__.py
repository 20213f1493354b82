"""The waitlist of a sold-out event: seats that come back are offered, in join order, as timed
one-time offers before they return to open sale (see docs/architecture.md, "The waitlist")."""
