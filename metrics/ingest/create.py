"""The single create's write: one statement that checks what the database knows and
inserts, so a create that nothing refuses costs one round trip."""

from uuid import UUID

from django.db import connections, router
from django.utils import timezone as django_timezone

from entities.models import Scope, User, acting_key
from entities.permissions import write_permission_sql

from ..models import MetricDefinition, MetricValue
from ..selectors import entity_timezone_sql
from ..services import DEFINITION_ACCEPTS_SQL, ValueFields, value_shape_params
from .statements import VALUE_INSERT_COLUMNS, change_params, value_insert_sql

#: The definition's facts a value's answer shows, read back by the statement.
_ANSWER_DEFINITION_FIELDS = ("name", "period_definition", "value_type", "storage_unit")

#: What the statement selects for each column of the values table: the entity ``e``, the
#: definition ``d`` and bound values.
_SOURCE = {
    "uid": "%(uid)s",
    "metric_id": "d.id",
    "context_type": "d.context_type",
    "entity_uid": "e.uid",
    "time_unit": "%(time_unit)s",
    "metric_date": "%(metric_date)s",
    "value": "%(value)s",
    "timezone": "COALESCE(%(timezone)s, {timezone})",
    "metadata": "%(metadata)s",
    "batch_id": "NULL",
    "created_at": "%(now)s",
    "updated_at": "%(now)s",
    "version": "1",
    "change_source": "%(change_source)s",
    "change_user_uid": "%(change_user_uid)s",
    "change_key_uid": "%(change_key_uid)s",
    "change_batch_id": "NULL",
    "change_reason": "%(change_reason)s",
}


def metric_value_create_checked(
    *, user, context_type: str, entity_uid: UUID, metric_uid: str, fields: ValueFields
) -> MetricValue | None:
    """Insert a value in one statement that also checks everything the database knows:
    the entity exists, the definition exists, fits the context, is active and takes this
    value, the user (or its API key) may write the entity, and no value holds the key yet.

    Returns the saved value, or ``None`` when the statement inserted nothing; the caller
    then asks, in the contract's order, which of those checks refused it. The user is read
    by the statement itself (``u``), so a caller known only by a token's uid costs no
    query of its own, and a deactivated user is refused at once.
    """
    connection = connections[router.db_for_write(MetricValue)]
    quote = connection.ops.quote_name
    key = acting_key(user)
    entities, timezone_sql = entity_timezone_sql(context_type, quote)
    selected = ", ".join(
        _SOURCE[column].format(timezone=timezone_sql) for column in VALUE_INSERT_COLUMNS
    )
    definitions = quote(MetricDefinition._meta.db_table)
    source = (
        f"SELECT {selected} FROM {entities} "
        f"JOIN {definitions} d ON d.uid = %(metric_uid)s "
        f"JOIN {quote(User._meta.db_table)} u ON u.uid = %(user_uid)s "
        f"WHERE e.uid = %(entity_uid)s AND u.is_active AND {DEFINITION_ACCEPTS_SQL} "
        f"AND {write_permission_sql(context_type, via_key=key is not None, quote=quote)}"
    )
    # Unqualified: SQLite's RETURNING does not take the table's alias.
    returning = [quote("timezone")] + [
        f"(SELECT {quote(name)} FROM {definitions} WHERE id = {quote('metric_id')})"
        for name in _ANSWER_DEFINITION_FIELDS
    ]
    instance = MetricValue(
        context_type=context_type,
        entity_uid=entity_uid,
        time_unit=fields.time_unit,
        metric_date=fields.metric_date,
        value=fields.value,
        timezone=fields.timezone,
        metadata=fields.metadata,
    )
    instance.created_at = instance.updated_at = django_timezone.now()
    meta = MetricValue._meta

    def prep(name: str, value):
        return meta.get_field(name).get_db_prep_save(value, connection)

    params = {
        "uid": prep("uid", instance.uid),
        "entity_uid": prep("entity_uid", entity_uid),
        "metric_uid": metric_uid,
        "user_uid": prep("entity_uid", user.uid),
        "context_type": context_type,
        "time_unit": fields.time_unit,
        "metric_date": prep("metric_date", fields.metric_date),
        "value": prep("value", fields.value),
        "timezone": fields.timezone,
        "metadata": prep("metadata", fields.metadata),
        "now": prep("created_at", instance.created_at),
        **value_shape_params(fields.value),
        **change_params(),
    }
    if key is not None:
        params["key_organization_id"] = key.organization_id
        params["key_writes"] = key.has_scope(Scope.METRICS_WRITE)
    with connection.cursor() as cursor:
        cursor.execute(value_insert_sql(source=source, returning=returning), params)
        row = cursor.fetchone()
    if row is None:
        return None
    instance.timezone = row[0]
    instance.metric = MetricDefinition(
        uid=metric_uid, **dict(zip(_ANSWER_DEFINITION_FIELDS, row[1:], strict=True))
    )
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
