"""Bulk ingestion: the one path by which many metric values enter the table at once.

The bulk endpoint (``POST /api/metrics/values/bulk``), ``manage.py import_metric_values``
and the demo loader all come through here, and every row gets exactly the checks of a
single create, in the same order:

1. ``context_type`` and ``entity_uid`` well-formed, the entity exists and (for an API
   caller) is visible — else *not found*, with the words of the single-create 404;
2. the body has the shape ``metrics.fields.MetricValueCreateSerializer`` accepts (the
   single create's own input serializer, so unknown fields, blank strings and bad dates
   read the same);
3. ``metrics.services.metric_value_build``: metric known, same context, active, value,
   date, timezone and ``_metadata`` rules;
4. the caller may write the entity (``entities.permissions.writable_entity_uids``:
   ``can_write_values`` for a batch);
5. the key (entity, metric, time unit, date) — decided by ``on_conflict``.

Items are applied as if one at a time, in order: a key repeated inside one call or file
conflicts with its earlier occurrence exactly as with a stored row, so results never
depend on the batch size.

Validation has a shortcut for the common row (``RowValidator.fast``) built only from the
shared rule functions (``normalize_value`` or, for plain digits,
``is_plain_whole_number``, ``value_errors_for_definition``,
``metric_date_errors``, the serializer's own date field, ``normalize_metadata``, a
memoised ``metric_value_build`` verdict per metric and context). It may only *accept*:
anything it is unsure of goes through the serializer and ``metric_value_build``, which
also writes every error message. ``test_ingest_validation.py`` checks that the shortcut never
accepts what the full path would refuse, nor stores a different value.

``batch_id``: every row a call or run *creates* carries the call's batch id; a row it
*updates* keeps the batch id of the write that created it. ``revert_batch`` therefore
deletes exactly what one batch created, and never a row that existed before it.

Two writers share everything above: the portable one (SQLite, and the bulk endpoint
everywhere: a bounded number of queries per call) and the PostgreSQL fast path for files
(``COPY`` into a temporary table, then per batch one statement that re-checks entity and
metric in SQL and writes — a plain ``INSERT`` while rows are new, a lookup of the stored
rows otherwise (read-only while nothing changes), ``INSERT … ON CONFLICT`` after a lost
race). Both build their ``INSERT`` with ``statements.value_insert_sql``.

Modules, each depending only on those above it:

- ``items``: an item's fields, its parsing (``split_item``), results and statuses;
- ``validation``: ``RowValidator``, the body's checks and their shortcut;
- ``statements``: the one ``INSERT`` of values (``value_insert_sql``);
- ``portable``: the portable writer (``ingest_portable``);
- ``bulk``: the bulk endpoint's service (``metric_values_bulk_ingest``);
- ``sources``: CSV and JSON Lines readers, opening a file, its format;
- ``batching``: batches, and the thread that prepares the next one (``prefetch``);
- ``postgres_sql`` and ``postgres``: the PostgreSQL fast path (``run_postgresql``);
- ``importer``: an import run (``Importer``), on either writer;
- ``export``: stored values as items (``metric_values_for_export``).
"""
