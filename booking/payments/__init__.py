"""Payments and the saga after them: intake and the saga vocabulary (`service`), the checks that
money matches (`checks`), the providers (`providers/`), their stores (`store`, `saga_store`,
`mismatch_store`), the buyer notifications (`notifications`) and the HTTP routes (`routes`)."""
