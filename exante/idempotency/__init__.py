"""Idempotency keys: the stored answers of writes sent with an ``Idempotency-Key`` header
(docs/idempotency.md). The HTTP side lives in ``exante.api.idempotency``."""
