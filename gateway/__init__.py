"""The edge: JWT check, Redis rate limits, request ids, and a streaming proxy to booking."""
