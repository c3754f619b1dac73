"""Reads of the metrics domain: entity resolution, definition lookups and the chainable
value queries the API and the admin build on. Nothing here writes or validates."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import orjson
from django.db import connections, models, router
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import JSONObject

from entities.models import ApiKey, Organization, Party, User, acting_key
from entities.permissions import NOT_FETCHED, value_write_role

from .constants import ContextType
from .models import MetricDefinition, MetricValue


def entity_queryset(context_type: str) -> models.QuerySet:
    """The table that ``context_type`` names, with what timezone defaults need joined."""
    if context_type == ContextType.ORGANIZATION:
        return Organization.objects.all()
    if context_type == ContextType.PARTY:
        return Party.objects.select_related("organization")
    if context_type == ContextType.USER:
        return User.objects.all()
    raise ValueError(f"unknown context type {context_type!r}")


def visible_entities(context_type: str, user) -> models.QuerySet:
    """Entities of ``context_type`` the caller may see, by the ``visible_to`` rules of the
    entity models (the same as every other read)."""
    queryset = entity_queryset(context_type)
    if context_type == ContextType.USER:
        return queryset.filter(pk__in=User.objects.visible_to(user).values("pk"))
    return queryset.visible_to(user)


def entity_get(*, context_type: str, entity_uid: UUID, user=None):
    """The entity, or ``None`` when it does not exist or (given a user) is not visible."""
    queryset = (
        visible_entities(context_type, user) if user is not None else entity_queryset(context_type)
    )
    # ``uid`` is unique: no ORDER BY (``first()`` would add the model's ordering and a sort).
    return next(iter(queryset.filter(uid=entity_uid).order_by()[:1]), None)


def entity_organization_timezone(entity) -> str:
    """The default timezone for values of ``entity``: its organization's.

    A user belongs to no single organization, so a user's own timezone stands in.
    """
    if isinstance(entity, Party):
        return entity.organization.timezone
    return getattr(entity, "timezone", None) or "UTC"


# --- Everything a value create needs to know, in one statement --------------------------------

#: Columns of the entity a create reads, by context type: ``EntityRef`` needs the uid and
#: the default timezone (a party's organization's), ``can_write_values`` the ids.
_CREATE_ENTITY_COLUMNS: dict[str, dict[str, str]] = {
    ContextType.ORGANIZATION: {"id": "id", "uid": "uid", "timezone": "timezone"},
    ContextType.PARTY: {
        "id": "id",
        "uid": "uid",
        "organization_id": "organization_id",
        "organization_timezone": "organization__timezone",
    },
    ContextType.USER: {"id": "id", "uid": "uid", "timezone": "timezone"},
}
#: What validation (context, activity, value rules) and the answer need of a definition.
_CREATE_DEFINITION_FIELDS = (
    "id",
    "uid",
    "name",
    "context_type",
    "value_type",
    "storage_unit",
    "period_definition",
    "is_active",
)
_CONTEXT_MODELS = {
    ContextType.ORGANIZATION: Organization,
    ContextType.PARTY: Party,
    ContextType.USER: User,
}
#: Prefix of the statement's column aliases (they may not clash with the model's fields).
_ALIAS = "c_"


@dataclass(frozen=True, slots=True)
class ValueCreateScope:
    """What ``value_create_scope`` found: the visible entity (with only the columns a
    create reads loaded; others load on access), the ``role`` to pass to
    ``can_write_values`` (``NOT_FETCHED`` when it needs none) and the definition
    (``None``: unknown uid)."""

    entity: models.Model
    role: str | None
    definition: MetricDefinition | None


def value_create_queryset(*, context_type: str, entity_uid, user, metric_uid: str | None):
    """The one statement behind ``value_create_scope``: the entity through the same
    ``visible_entities`` as every read, the role from ``value_write_role`` (the fact
    ``can_write_values`` would otherwise query) and the definition as a JSON object from
    an independent subquery (so an unknown uid still returns the entity)."""
    queryset = visible_entities(context_type, user).filter(uid=entity_uid).order_by()
    definition = (
        MetricDefinition.objects.filter(uid=metric_uid)
        .order_by()
        .values(json=JSONObject(**{name: name for name in _CREATE_DEFINITION_FIELDS}))[:1]
    )
    columns = {
        _ALIAS + alias: F(path) for alias, path in _CREATE_ENTITY_COLUMNS[context_type].items()
    }
    columns[_ALIAS + "definition"] = Subquery(definition)
    role = value_write_role(user, queryset.model)
    if role is not None:
        columns[_ALIAS + "role"] = role
    return queryset.values(**columns)[:1]


class _Sentinel:
    """Stand-in argument values the create statement is compiled with once per shape;
    each run binds the real values at the positions where these were found."""

    USER_PK = -7_263_554_001
    ORGANIZATION_PK = -7_263_554_002
    #: Never bound: a statement that came to depend on the key's own id is refused.
    KEY_PK = -7_263_554_003
    ENTITY_UID = UUID("5e1f7a0c-0b7d-4f1e-9c3a-7d2b8e6f4a91")
    METRIC_UID = "__metric_uid_sentinel__"


@dataclass(frozen=True, slots=True)
class _CompiledCreateScope:
    sql: str
    #: Per parameter: the name of the argument bound there, or ``None`` for a constant.
    slots: tuple[str | None, ...]
    constants: tuple
    #: The aliases of the selected columns, in order.
    columns: tuple[str, ...]
    #: Column alias → field that turns the database's value into Python.
    fields: dict[str, models.Field]


_compiled_create_scopes: dict[tuple, _CompiledCreateScope] = {}


def _principal_shape(user) -> tuple[bool, bool]:
    """Everything about the caller that the SQL *text* of visibility and of the write role
    depends on (``visible_to`` and ``value_write_role`` branch on exactly these); the
    caller's ids are bound parameters."""
    return bool(user.is_staff), acting_key(user) is not None


def _compile_create_scope(connection, context_type: str, shape) -> _CompiledCreateScope:
    is_staff, has_key = shape
    # Loaded-looking instances with only these fields: reading any other (a rule that came
    # to depend on more than the shape) would query a row that does not exist and fail
    # loudly instead of compiling a statement that is wrong for other callers.
    stand_in = User.from_db(connection.alias, ["id", "is_staff"], [_Sentinel.USER_PK, is_staff])
    if has_key:
        stand_in.api_key = ApiKey.from_db(
            connection.alias,
            ["id", "organization_id"],
            [_Sentinel.KEY_PK, _Sentinel.ORGANIZATION_PK],
        )
    queryset = value_create_queryset(
        context_type=context_type,
        entity_uid=_Sentinel.ENTITY_UID,
        user=stand_in,
        metric_uid=_Sentinel.METRIC_UID,
    )
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    markers = {
        "user_pk": _Sentinel.USER_PK,
        "organization_pk": _Sentinel.ORGANIZATION_PK,
        "entity_uid": _prepare_uuid(_Sentinel.ENTITY_UID, connection),
        "metric_uid": _Sentinel.METRIC_UID,
    }
    slots = []
    for param in params:
        found = [
            name
            for name, marker in markers.items()
            if type(param) is type(marker) and param == marker
        ]
        slots.append(found[0] if found else None)
    # A stand-in that reached the statement any other way (inlined into the text, or
    # bound in a changed form) would make it wrong for every other caller: refuse it.
    traces = {str(_Sentinel.KEY_PK), _Sentinel.ENTITY_UID.hex, str(_Sentinel.ENTITY_UID)}
    traces |= {str(marker) for marker in markers.values()}
    constants = [str(param) for slot, param in zip(slots, params, strict=True) if slot is None]
    if any(trace in text for trace in traces for text in (sql, *constants)):
        raise RuntimeError("the create scope statement does not bind its arguments plainly")
    if not {"entity_uid", "metric_uid"} <= set(slots):
        raise RuntimeError("the create scope statement does not bind the entity and metric")
    sql, slots, params = _inline_constants(connection, sql, slots, params)
    model = queryset.model
    fields = {}
    for alias, path in _CREATE_ENTITY_COLUMNS[context_type].items():
        target = model
        for part in path.split("__")[:-1]:
            target = target._meta.get_field(part).related_model
        fields[_ALIAS + alias] = target._meta.get_field(path.split("__")[-1])
    return _CompiledCreateScope(
        sql=sql,
        slots=tuple(slots),
        constants=tuple(None if slot else param for slot, param in zip(slots, params, strict=True)),
        columns=tuple(alias for _, _, alias in compiler.select),
        fields=fields,
    )


_PLACEHOLDER = re.compile(r"(%%|%s)")


def _inline_constants(connection, sql: str, slots: list, params) -> tuple[str, list, list]:
    """On PostgreSQL, write the constant parameters (the definition's JSON keys) into the
    text once, quoted by psycopg itself, so each run binds only the caller's values:
    client-side binding quotes every parameter on every execution."""
    if connection.vendor != "postgresql":
        return sql, slots, list(params)
    pieces = _PLACEHOLDER.split(sql)
    kept_slots, kept_params, position = [], [], 0
    for index, piece in enumerate(pieces):
        if piece != "%s":
            continue
        slot, param = slots[position], params[position]
        position += 1
        if slot is None:
            pieces[index] = connection.ops.compose_sql("%s", [param]).replace("%", "%%")
        else:
            kept_slots.append(slot)
            kept_params.append(param)
    if position != len(params):
        raise RuntimeError("the create scope statement's placeholders do not match")
    return "".join(pieces), kept_slots, kept_params


_UUID_FIELD = models.UUIDField()


def _prepare_uuid(value, connection):
    return _UUID_FIELD.get_db_prep_value(value, connection)


def value_create_scope(
    *, context_type: str, entity_uid: UUID, user, metric_uid: str | None
) -> ValueCreateScope | None:
    """The entity of a create if ``user`` may see it (``None`` otherwise, the 404 case),
    with the caller's deciding role and the definition, in one statement.

    The statement is ``value_create_queryset``, compiled to SQL once per process, database,
    context type and shape of caller (staff or not, API key or not) and then run with this
    caller's values bound. Building and compiling that queryset costs about ten times
    what running it does, on the hottest write path.
    """
    if not (user and user.is_authenticated):
        return None
    connection, compiled, params = create_scope_statement(
        context_type=context_type, entity_uid=entity_uid, user=user, metric_uid=metric_uid
    )
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    found = dict(zip(compiled.columns, row, strict=True))
    return _scope_from_row(context_type, found, compiled.fields, connection.alias)


def create_scope_statement(*, context_type: str, entity_uid, user, metric_uid: str | None):
    """``(connection, compiled statement, parameters)`` that ``value_create_scope`` runs:
    the compiled SQL of the caller's shape with the caller's values bound."""
    connection = connections[router.db_for_read(_CONTEXT_MODELS[context_type])]
    shape = _principal_shape(user)
    cache_key = (connection.alias, connection.vendor, context_type, shape)
    compiled = _compiled_create_scopes.get(cache_key)
    if compiled is None:
        compiled = _compiled_create_scopes[cache_key] = _compile_create_scope(
            connection, context_type, shape
        )
    key = acting_key(user)
    values = {
        "user_pk": user.pk,
        "organization_pk": key.organization_id if key is not None else None,
        "entity_uid": _prepare_uuid(entity_uid, connection),
        "metric_uid": metric_uid,
    }
    params = [
        values[slot] if slot else constant
        for slot, constant in zip(compiled.slots, compiled.constants, strict=True)
    ]
    return connection, compiled, params


def _scope_from_row(context_type: str, row: dict, fields: dict, alias: str) -> ValueCreateScope:
    """Model instances from a row of ``value_create_queryset`` (only the read columns are
    loaded: any other field is fetched on access, like ``QuerySet.only``)."""
    value = {name: fields[name].to_python(row[name]) for name in fields}
    pk, uid = value[_ALIAS + "id"], value[_ALIAS + "uid"]
    if context_type == ContextType.PARTY:
        entity = Party.from_db(
            alias, ["id", "uid", "organization_id"], [pk, uid, value[_ALIAS + "organization_id"]]
        )
        entity.organization = Organization.from_db(
            alias,
            ["id", "timezone"],
            [value[_ALIAS + "organization_id"], value[_ALIAS + "organization_timezone"]],
        )
    else:
        model = Organization if context_type == ContextType.ORGANIZATION else User
        entity = model.from_db(
            alias, ["id", "uid", "timezone"], [pk, uid, value[_ALIAS + "timezone"]]
        )
    return ValueCreateScope(
        entity=entity,
        role=row.get(_ALIAS + "role", NOT_FETCHED),
        definition=_definition_from_json(row[_ALIAS + "definition"], alias),
    )


def _definition_from_json(raw, alias: str) -> MetricDefinition | None:
    if raw is None:
        return None
    data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    meta = MetricDefinition._meta
    return MetricDefinition.from_db(
        alias,
        list(_CREATE_DEFINITION_FIELDS),
        [meta.get_field(name).to_python(data[name]) for name in _CREATE_DEFINITION_FIELDS],
    )


def metric_definitions_by_uid(uids: Iterable[str]) -> dict[str, MetricDefinition]:
    """The definitions among ``uids`` that exist, keyed by uid (one query)."""
    return {d.uid: d for d in MetricDefinition.objects.filter(uid__in=list(uids))}


class MetricValueQuerySet(models.QuerySet):
    """Chainable, side-effect-free query building over the values table.

    Every method keeps to the columns of the unique index (entity, metric, unit, date), so
    an entity-scoped read is an index range scan whatever the size of the table.
    """

    def for_entity(self, *, context_type: str, entity_uid: UUID) -> "MetricValueQuerySet":
        return self.filter(entity_uid=entity_uid, context_type=context_type)

    def with_time_unit(self, time_unit: str) -> "MetricValueQuerySet":
        return self.filter(time_unit=time_unit)

    def for_metrics(self, metric_ids: Iterable[int] | None) -> "MetricValueQuerySet":
        """Only these metrics; ``None`` means all of them."""
        if metric_ids is None:
            return self
        return self.filter(metric_id__in=list(metric_ids))

    def in_range(self, start: date | None, end: date | None) -> "MetricValueQuerySet":
        """``metric_date`` between ``start`` and ``end``, both inclusive and optional."""
        queryset = self
        if start is not None:
            queryset = queryset.filter(metric_date__gte=start)
        if end is not None:
            queryset = queryset.filter(metric_date__lte=end)
        return queryset

    def latest_per_metric(
        self,
        *,
        context_type: str,
        entity_uid: UUID,
        time_unit: str,
        metric_ids: Iterable[int] | None = None,
    ) -> "MetricValueQuerySet":
        """The newest value of each metric of the entity, in one statement.

        For every definition of the context a correlated ``ORDER BY metric_date DESC
        LIMIT 1`` subquery picks one uid. On PostgreSQL each is a single backward descent
        of the unique index (the same plan as a ``LATERAL`` join), so the cost grows with
        the number of metrics and not with the stored history; SQLite runs the same SQL
        with the same result. A ``DISTINCT ON`` would instead read every row of the entity.
        """
        newest = (
            MetricValue.objects.filter(
                entity_uid=entity_uid, metric_id=OuterRef("pk"), time_unit=time_unit
            )
            .order_by("-metric_date")
            .values("uid")[:1]
        )
        definitions = MetricDefinition.objects.filter(context_type=context_type)
        if metric_ids is not None:
            definitions = definitions.filter(pk__in=list(metric_ids))
        latest_uids = definitions.annotate(latest_uid=Subquery(newest)).values("latest_uid")
        return self.filter(uid__in=latest_uids)


def metric_values() -> MetricValueQuerySet:
    """All values, as a ``MetricValueQuerySet`` to chain the methods above on."""
    return MetricValueQuerySet(model=MetricValue)


def metric_value_get_visible(*, uid: UUID, user) -> tuple[MetricValue, object] | None:
    """The value and its entity, or ``None`` when either is missing or the entity is not
    visible to ``user``: a value is visible exactly when its entity is."""
    value = MetricValue.objects.select_related("metric").filter(uid=uid).first()
    if value is None:
        return None
    entity = entity_get(context_type=value.context_type, entity_uid=value.entity_uid, user=user)
    if entity is None:
        return None
    return value, entity
