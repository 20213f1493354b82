"""Small pieces shared by the gateway and the booking service (no business logic)."""
