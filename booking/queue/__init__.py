"""The virtual queue: joining and places (`service`), its Redis scripts (`store`), the signed
one-time passes (`passes`), the live SSE stream (`stream`) and its HTTP routes (`routes`)."""
