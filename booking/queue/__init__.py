"""The virtual queue: joining and places (`service`), its Redis scripts (`store`), the signed
one-time passes (`passes`), the live SSE stream (`stream`) and its HTTP routes (`routes`)."""

from booking.queue.passes import QueuePass, sign_pass
from booking.queue.service import new_pass_id, shuffled_order
from booking.queue.store import AdmitResult, QueueStore

__all__ = ["AdmitResult", "QueuePass", "QueueStore", "new_pass_id", "shuffled_order", "sign_pass"]
