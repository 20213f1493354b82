"""Payments and the saga after them: intake and the saga vocabulary (`service`), the checks that
money matches (`checks`), the providers (`providers/`), their stores (`store`, `saga_store`,
`mismatch_store`), the buyer notifications (`notifications`) and the HTTP routes (`routes`).

What other packages (the workers) use is re-exported here, under names that say which record
they touch; the submodules are internals."""

from booking.payments.checks import Arrived
from booking.payments.checks import flag as flag_payment_mismatch
from booking.payments.checks import mismatches as payment_mismatches
from booking.payments.checks import record as record_payment_mismatch
from booking.payments.mismatch_store import NOTHING_TO_REFUND as MISMATCH_NOTHING_TO_REFUND
from booking.payments.mismatch_store import REFUNDED as MISMATCH_REFUNDED
from booking.payments.mismatch_store import REFUSED as MISMATCH_REFUSED
from booking.payments.mismatch_store import Mismatch, settle_mismatch
from booking.payments.mismatch_store import lease_due as lease_due_mismatches
from booking.payments.mismatch_store import try_again_later as retry_mismatch_later
from booking.payments.notifications import (
    Notifier,
    OutboxNotifier,
    confirmation_email,
    payment_declined_email,
    refund_email,
)
from booking.payments.providers import PaymentConfig, create_provider
from booking.payments.providers.base import (
    SETTLED_WITHOUT_MONEY,
    Charge,
    PaymentProvider,
    ProviderRefusedError,
    RefundRequest,
)
from booking.payments.saga import (
    COMPENSATED,
    COMPLETED,
    SAGA_FAILED,
    STATE_OF_STEP,
    STEP_CONFIRM,
    STEP_NOTIFY,
    STEP_REFUND,
    STEP_RELEASE,
    SagaTopics,
    advance_saga,
)
from booking.payments.saga_store import Saga, claim_stuck_sagas, find_saga, insert_saga
from booking.payments.saga_store import record_step as record_saga_step
from booking.payments.store import FAILED as PAYMENT_FAILED
from booking.payments.store import PENDING as PAYMENT_PENDING
from booking.payments.store import REFUNDED as PAYMENT_REFUNDED
from booking.payments.store import SUCCEEDED as PAYMENT_SUCCEEDED
from booking.payments.store import (
    Payment,
    UnansweredPayment,
    adopt_provider_ref,
    find_payment,
    unanswered_payments,
)
from booking.payments.store import find_by_provider_ref as find_payment_by_provider_ref
from booking.payments.store import set_status as set_payment_status

__all__ = [
    "COMPENSATED",
    "COMPLETED",
    "MISMATCH_NOTHING_TO_REFUND",
    "MISMATCH_REFUNDED",
    "MISMATCH_REFUSED",
    "PAYMENT_FAILED",
    "PAYMENT_PENDING",
    "PAYMENT_REFUNDED",
    "PAYMENT_SUCCEEDED",
    "SAGA_FAILED",
    "SETTLED_WITHOUT_MONEY",
    "STATE_OF_STEP",
    "STEP_CONFIRM",
    "STEP_NOTIFY",
    "STEP_REFUND",
    "STEP_RELEASE",
    "Arrived",
    "Charge",
    "Mismatch",
    "Notifier",
    "OutboxNotifier",
    "Payment",
    "PaymentConfig",
    "PaymentProvider",
    "ProviderRefusedError",
    "RefundRequest",
    "Saga",
    "SagaTopics",
    "UnansweredPayment",
    "adopt_provider_ref",
    "advance_saga",
    "claim_stuck_sagas",
    "confirmation_email",
    "create_provider",
    "find_payment",
    "find_payment_by_provider_ref",
    "find_saga",
    "flag_payment_mismatch",
    "insert_saga",
    "lease_due_mismatches",
    "payment_declined_email",
    "payment_mismatches",
    "record_payment_mismatch",
    "record_saga_step",
    "refund_email",
    "retry_mismatch_later",
    "set_payment_status",
    "settle_mismatch",
    "unanswered_payments",
]
