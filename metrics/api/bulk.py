"""``POST /api/metrics/values/bulk``: many values, each through the single create's checks."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from exante.api.schema import error_response
from exante.errors import Conflict, DomainError
from exante.fields import StrictBooleanField, StrictFieldsMixin
from exante.observability import record_ingested

from ..constants import ChangeSource, ContextType, TimeUnit
from ..fields import MetadataField, ParsedJSONField, StrictDateField, ValueInputField
from ..ingest.bulk import metric_values_bulk_ingest
from ..ingest.items import OnConflict as OnConflictChoice
from ..ingest.items import Status
from .changes import REASON_PARAM, request_change

MAX_ITEMS = 5000


class BulkRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    """The envelope of a bulk call; each item is judged on its own by the service, so a
    bad item is reported at its index instead of failing the request's shape."""

    on_conflict = serializers.ChoiceField(
        choices=OnConflictChoice.choices, default=OnConflictChoice.ERROR
    )
    dry_run = StrictBooleanField(required=False, default=False)
    items = serializers.ListField(
        child=ParsedJSONField(), min_length=1, max_length=MAX_ITEMS, allow_empty=False
    )


# --- Documentation-only serializers (the request is parsed by the ones above) -------------


class BulkItemSerializer(StrictFieldsMixin, serializers.Serializer):
    context_type = serializers.ChoiceField(
        choices=ContextType.choices, help_text="Which table `entity_uid` is in."
    )
    entity_uid = serializers.UUIDField(help_text="The organization, party or user.")
    metric_uid = serializers.CharField(max_length=64, help_text="uid of the metric definition.")
    time_unit = serializers.ChoiceField(
        choices=TimeUnit.choices,
        required=False,
        default=TimeUnit.DAY,
        help_text="`day` (any date), `month` (first of a month) or `year` (January 1st).",
    )
    metric_date = StrictDateField(help_text="`YYYY-MM-DD`, aligned to `time_unit`.")
    value = ValueInputField(
        help_text="A JSON number or numeric string; the rules of a single create apply."
    )
    timezone = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="IANA name; omitted or null: the timezone of the entity's organization.",
    )
    _metadata = MetadataField(
        required=False, allow_null=True, help_text="A JSON object of at most 16 KiB."
    )


class BulkRequestDocSerializer(StrictFieldsMixin, serializers.Serializer):
    on_conflict = serializers.ChoiceField(
        choices=OnConflictChoice.choices,
        default=OnConflictChoice.ERROR,
        help_text="What to do when a value for an item's key (entity, metric, time unit, "
        "date) already exists, or an earlier item of the same call has the same key: "
        "`error` fails the whole call (all or nothing); `skip` leaves the stored value and "
        "reports `skipped`; `update` overwrites `value`, `timezone` and `_metadata` "
        "(`unchanged` when identical: the row, `updated_at` included, is not touched).",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Decide and report everything exactly, write nothing."
    )
    items = BulkItemSerializer(many=True, help_text=f"1 to {MAX_ITEMS} values.")


class BulkCountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField()
    error = serializers.IntegerField()
    total = serializers.IntegerField()


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in `items` (from 0).")
    status = serializers.ChoiceField(choices=[(s, s) for s in Status.ALL])
    uid = serializers.UUIDField(
        allow_null=True,
        help_text="The value's uid: the new one for `created` (null in a dry run), the "
        "stored one for `updated`/`unchanged`/`skipped` and for a conflicting `error`.",
    )
    code = serializers.CharField(
        allow_null=True,
        help_text="For `error`: `validation_error`, `not_found`, `permission_denied` or "
        "`duplicate_value` — what a single create would have answered.",
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        allow_null=True,
        help_text="For `error`: field → messages, as a single create would answer.",
    )


class BulkResultSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField(
        allow_null=True,
        help_text="Recorded on every row this call created (rows it updated keep the "
        "batch id of the write that created them); null when nothing was written.",
    )
    on_conflict = serializers.CharField()
    dry_run = serializers.BooleanField()
    written = serializers.BooleanField(help_text="False for a dry run or a rejected call.")
    counts = BulkCountsSerializer()
    results = BulkItemResultSerializer(many=True, help_text="One per item, in order.")


# --- Errors ---------------------------------------------------------------------------------


class BulkInvalid(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Some items are invalid; nothing was written."
    default_code = "validation_error"


class BulkConflict(Conflict):
    default_detail = "Some items conflict with existing values; nothing was written."
    default_code = "duplicate_value"


def _item_errors(results: list[dict]) -> dict[str, list[str]]:
    """Per-item errors as ``items.<index>.<field>`` paths, the shape of nested 400s."""
    return {
        f"items.{result['index']}.{name}": messages
        for result in results
        for name, messages in (result["errors"] or {}).items()
    }


DESCRIPTION = f"""
Create (or, with `on_conflict`, skip or update) up to {MAX_ITEMS} values in one call.
Each item names its own `context_type` and `entity_uid` and passes exactly the checks of
`POST /api/metrics/values/{{context_type}}/{{entity_uid}}`, in the same order; the answer
lists one result per item, in order, plus counts.

An item fails with the `code` a single create would answer with: `not_found` (entity
absent or not visible to the caller — the two are indistinguishable, as for one value),
`validation_error`, `permission_denied` (the caller may read but not write that entity),
`duplicate_value` (with `on_conflict=error`). Items are applied as if one by one: an item
whose key repeats an earlier item's conflicts with it like with a stored value.

`on_conflict=error` is all or nothing: if any item fails, nothing is written, every
failed item is reported (`errors` as `items.<index>.<field>`, the full result list in
`data`), valid items are reported `skipped`, and the answer is 400 when any item is
invalid (including not found and not writable), else 409 `duplicate_value`. With `skip`
or `update` the valid items are written, the failed ones reported, and the answer is 200.

The call is one transaction and a fixed number of queries. Every row it creates records
the returned `batch_id` (`manage.py revert_batch` deletes them). Body limit:
{settings.API_MAX_BULK_BODY_BYTES} bytes (413 beyond).
"""


@extend_schema(
    summary="Create many metric values",
    description=DESCRIPTION,
    parameters=[REASON_PARAM],
    request=BulkRequestDocSerializer,
    responses={
        200: BulkResultSerializer,
        400: error_response(
            400,
            "`validation_error`: the body's shape, or (with `on_conflict=error`) at least "
            "one invalid, unknown or not writable item; `data` then holds the full report "
            "and nothing was written.",
        ),
        409: error_response(
            409,
            "`duplicate_value`: with `on_conflict=error`, all items valid but some conflict "
            "with stored values or earlier items; `data` holds the full report (the "
            "existing `uid` per item) and nothing was written.",
        ),
    },
    examples=[
        OpenApiExample(
            "Two values",
            request_only=True,
            value={
                "on_conflict": "update",
                "items": [
                    {
                        "context_type": "ORGANIZATION",
                        "entity_uid": "5f0c6d1e-8d1b-4a38-9f55-0c8b4a7f2a10",
                        "metric_uid": "total_ar",
                        "metric_date": "2026-03-01",
                        "value": 1234500,
                    },
                    {
                        "context_type": "PARTY",
                        "entity_uid": "0b6e3a52-33d8-4c8e-9f0e-2f7de1b6b9a4",
                        "metric_uid": "party_total_ar",
                        "time_unit": "month",
                        "metric_date": "2026-03-01",
                        "value": "250000",
                        "_metadata": {"source": "erp"},
                    },
                ],
            },
        )
    ],
)
class MetricValueBulkView(APIView):
    """Tenancy and roles are checked per item by the service."""

    api_scope = "metrics"
    max_body_setting = "API_MAX_BULK_BODY_BYTES"

    def post(self, request, *args, **kwargs):
        body = BulkRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with request_change(request, ChangeSource.BULK):
            report = metric_values_bulk_ingest(
                items=data["items"],
                user=request.user,
                on_conflict=data["on_conflict"],
                dry_run=data["dry_run"],
            )
        payload = report.as_data()
        if report.rejected:
            results = payload["results"]
            failed = [r for r in results if r["status"] == Status.ERROR]
            invalid = [r for r in failed if r["code"] != "duplicate_value"]
            if invalid:
                raise BulkInvalid(
                    f"{len(invalid)} of {len(results)} items are invalid; nothing was written.",
                    errors=_item_errors(failed),
                    data=payload,
                )
            raise BulkConflict(
                f"{len(failed)} of {len(results)} items conflict with existing values; "
                "nothing was written.",
                errors=_item_errors(failed),
                data=payload,
            )
        if payload["written"]:
            for outcome, number in payload["counts"].items():
                if outcome in ("created", "updated"):
                    record_ingested(number, source="bulk", outcome=outcome)
        return Response(payload)
