"""The HTTP routes of the catalog, bookings, auth, feed and operations, one module per
resource (the queue's and the payments' routes live in their packages)."""
