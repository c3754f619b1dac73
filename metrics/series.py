"""Series: an entity's day values combined into buckets (day, ISO week, month, quarter,
year), by each metric's aggregation, in one statement whatever the number of metrics.

The database does the grouping (``date_trunc`` on PostgreSQL, ``strftime`` on SQLite);
Python only lays the grouped rows onto the dense list of buckets, which it builds from
calendar arithmetic (``metrics.periods``), never with a query per bucket. A stored month
or year value for a month or year bucket wins over that bucket's days.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import connection

from entities.models import Party

from .constants import VALUE_QUANTUM, Aggregation, Bucket, TimeUnit
from .models import MetricDefinition, MetricValue
from .periods import (
    bucket_count,
    bucket_end,
    bucket_start,
    bucket_starts,
    shift_buckets,
    shift_year,
)

#: Most buckets one series answer may hold.
MAX_BUCKETS = 1000
#: Most metrics one series request may ask for.
MAX_SERIES_METRICS = 20
#: Compare modes and fills a series accepts.
COMPARE_PREVIOUS_PERIOD = "previous_period"
COMPARE_PREVIOUS_YEAR = "previous_year"
COMPARE_MODES = (COMPARE_PREVIOUS_PERIOD, COMPARE_PREVIOUS_YEAR)
FILL_ZERO = "zero"
FILL_PREVIOUS = "previous"
FILL_MODES = (FILL_ZERO, FILL_PREVIOUS)
#: Buckets a stored value of the same time unit can stand for.
STORED_BUCKETS = {Bucket.MONTH: TimeUnit.MONTH, Bucket.YEAR: TimeUnit.YEAR}

SOURCE_STORED = "stored"
SOURCE_DAYS = "days"
RATIO_QUANTUM = Decimal("0.0001")

# --- SQL -------------------------------------------------------------------------------------

#: The first day of the bucket holding ``v.metric_date``, as a date (PostgreSQL) or as
#: ISO text (SQLite, which stores dates as ISO text). ``%%`` is a literal percent sign.
#: PostgreSQL truncates a ``timestamp``: a bare date would be cast to ``timestamptz`` and
#: truncated in the session's timezone, slower and with nothing to gain.
_BUCKET_SQL = {
    "postgresql": {
        Bucket.DAY: "v.metric_date",
        Bucket.WEEK: "CAST(date_trunc('week', CAST(v.metric_date AS timestamp)) AS date)",
        Bucket.MONTH: "CAST(date_trunc('month', CAST(v.metric_date AS timestamp)) AS date)",
        Bucket.QUARTER: "CAST(date_trunc('quarter', CAST(v.metric_date AS timestamp)) AS date)",
        Bucket.YEAR: "CAST(date_trunc('year', CAST(v.metric_date AS timestamp)) AS date)",
    },
    "sqlite": {
        Bucket.DAY: "v.metric_date",
        # strftime %w counts from Sunday; ISO weeks start on Monday.
        Bucket.WEEK: "date(v.metric_date, '-' || ((CAST(strftime('%%w', v.metric_date) AS "
        "integer) + 6) %% 7) || ' days')",
        Bucket.MONTH: "strftime('%%Y-%%m-01', v.metric_date)",
        Bucket.QUARTER: "printf('%%s-%%02d-01', strftime('%%Y', v.metric_date), "
        "((CAST(strftime('%%m', v.metric_date) AS integer) - 1) / 3) * 3 + 1)",
        Bucket.YEAR: "strftime('%%Y-01-01', v.metric_date)",
    },
}

#: Buckets long enough that a LATERAL aggregate per (party, metric, bucket) beats one
#: grouping of every day row (a day or week bucket would mean one probe per few rows).
_LATERAL_BUCKETS = frozenset({Bucket.MONTH, Bucket.QUARTER, Bucket.YEAR})

#: How the parties' bucket values combine into the organization's: balances and flows
#: add up, averages average, extremes stay extreme.
_ACROSS_COLUMN = {
    Aggregation.SUM: "total",
    Aggregation.LAST: "total",
    Aggregation.AVERAGE: "mean",
    Aggregation.MIN: "lo",
    Aggregation.MAX: "hi",
}


@dataclass(frozen=True, slots=True)
class BucketRow:
    """What the statement found for one metric and bucket."""

    value: Decimal
    count: int
    stored: int  # entities whose stored value stood for the bucket
    entities: int  # entities that contributed (parties when rolled up; else 1)


@dataclass(frozen=True, slots=True)
class FoundRows:
    """The statement's answer: rows by ``(metric id, bucket start)`` for the buckets that
    have values, and, rolled up across parties, how many active parties there are (each
    expects the bucket's days); ``None`` for one entity."""

    rows: dict[tuple[int, date], BucketRow]
    party_count: int | None


def db_uid(uid):
    """An entity uid as the values table stores it (a uuid, or hex text on SQLite)."""
    return MetricValue._meta.get_field("entity_uid").get_db_prep_value(uid, connection)


def _series_sql(
    *,
    definitions: Sequence[MetricDefinition],
    bucket: str,
    start: date,
    end: date,
    entity_sql: str,
    entity_source: str,
    entity_params: list,
    organization_id: int | None,
) -> tuple[str, list]:
    """The statement: every metric's buckets for one entity or, given the
    ``organization_id`` whose active parties they are, for every entity of
    ``entity_sql`` (a condition on ``v.entity_uid``; ``entity_source`` is the same set as
    a query of ``uid``s, taking the same parameters) rolled up per bucket."""
    quote = connection.ops.quote_name
    values_table = quote(MetricValue._meta.db_table)
    metric_ids = [definition.pk for definition in definitions]
    id_marks = ", ".join(["%s"] * len(metric_ids))
    bucket_sql = _BUCKET_SQL[connection.vendor][bucket]
    adapt = connection.ops.adapt_datefield_value
    params: list = []

    aggregations = {definition.aggregation for definition in definitions}
    # The latest day's value of each group ("last"): an ordered aggregate inside each
    # small group on PostgreSQL; SQLite, without arrays, takes it from a window.
    last_window = ""
    if connection.vendor == "postgresql":
        last_sql = "(array_agg(x ORDER BY d DESC))[1]"
    else:
        last_sql = "MAX(lx)"
        if Aggregation.LAST in aggregations:
            last_window = (
                f", FIRST_VALUE(v.value) OVER (PARTITION BY v.entity_uid, v.metric_id, "
                f"{bucket_sql} ORDER BY v.metric_date DESC) AS lx"
            )
    aggregate_sql = {
        Aggregation.SUM: "SUM(x)",
        Aggregation.AVERAGE: "AVG(x)",
        Aggregation.MIN: "MIN(x)",
        Aggregation.MAX: "MAX(x)",
        Aggregation.LAST: last_sql,
    }

    def value_sql(metric_column: str, aggregates: dict[str, str]) -> str:
        """One entity's value for the bucket, by each metric's own aggregation; only the
        aggregates some metric needs are computed."""
        if len(aggregations) == 1:
            return aggregates[next(iter(aggregations))]
        whens = " ".join(f"WHEN {int(d.pk)} THEN {aggregates[d.aggregation]}" for d in definitions)
        return f"CASE {metric_column} {whens} END"

    if (
        organization_id is not None
        and connection.vendor == "postgresql"
        and bucket in _LATERAL_BUCKETS
    ):
        # Rolled up over many parties in a few long buckets: each (party, metric,
        # bucket) aggregates its own index range in a LATERAL subquery, instead of
        # grouping every day row of every party at once (1,000 parties × a year by month,
        # "last": 440 ms grouped, 175 ms by LATERAL, on the benchmark's loaded two cores).
        starts = bucket_starts(start, end, bucket)
        ranges = ", ".join(["(CAST(%s AS date), CAST(%s AS date), CAST(%s AS date))"] * len(starts))
        for first in starts:
            last = bucket_end(first, bucket)
            params += [adapt(first), adapt(max(first, start)), adapt(min(last, end))]
        metric_rows = ", ".join(["(%s)"] * len(metric_ids))
        # "last" of one range is a single backward probe of the index.
        last_probe = (
            f"(SELECT z.value FROM {values_table} z WHERE z.entity_uid = e.uid "
            f"AND z.metric_id = m.id AND z.time_unit = '{TimeUnit.DAY.value}' "
            "AND z.metric_date BETWEEN bk.lo AND bk.hi ORDER BY z.metric_date DESC LIMIT 1)"
        )
        lateral_value = value_sql("m.id", aggregate_sql | {Aggregation.LAST: last_probe})
        params += [*entity_params, *metric_ids, TimeUnit.DAY]
        ctes = [
            f"bk (b, lo, hi) AS (VALUES {ranges}), "
            "gl AS (SELECT e.uid AS entity_uid, m.id AS metric_id, bk.b, agg.n, agg.val, "
            f"1 AS from_days FROM ({entity_source}) e CROSS JOIN (VALUES {metric_rows}) m (id) "
            f"CROSS JOIN bk CROSS JOIN LATERAL (SELECT COUNT(*) AS n, {lateral_value} AS val "
            f"FROM (SELECT v.value AS x, v.metric_date AS d FROM {values_table} v "
            "WHERE v.entity_uid = e.uid AND v.metric_id = m.id AND v.time_unit = %s "
            "AND v.metric_date BETWEEN bk.lo AND bk.hi) w) agg WHERE agg.n > 0)"
        ]
    else:
        days = (
            f"SELECT v.entity_uid, v.metric_id, {bucket_sql} AS b, v.metric_date AS d, "
            f"v.value AS x{last_window} FROM {values_table} v WHERE {entity_sql} "
            f"AND v.metric_id IN ({id_marks}) AND v.time_unit = %s "
            "AND v.metric_date BETWEEN %s AND %s"
        )
        params += [*entity_params, *metric_ids, TimeUnit.DAY, adapt(start), adapt(end)]
        # Grouped in the index's order (entity, metric, then the date's bucket), so each
        # entity's rows need only a small sort of their own.
        ctes = [
            f"gl AS (SELECT entity_uid, metric_id, b, COUNT(*) AS n, "
            f"{value_sql('metric_id', aggregate_sql)} AS val, "
            f"1 AS from_days FROM ({days}) v GROUP BY entity_uid, metric_id, b)"
        ]
    picked = "SELECT * FROM gl"
    if stored_unit := STORED_BUCKETS.get(bucket):
        # Stored values dated on the first day of any listed bucket (a bucket that only
        # overlaps the range still counts as a whole).
        ctes.append(
            "st AS (SELECT v.entity_uid, v.metric_id, v.metric_date AS b, 1 AS n, "
            "v.value AS val, 0 AS from_days "
            f"FROM {values_table} v WHERE {entity_sql} AND v.metric_id IN ({id_marks}) "
            "AND v.time_unit = %s AND v.metric_date BETWEEN %s AND %s)"
        )
        params += [
            *entity_params,
            *metric_ids,
            stored_unit,
            adapt(bucket_start(start, bucket)),
            adapt(bucket_start(end, bucket)),
        ]
        picked = (
            "SELECT * FROM st UNION ALL SELECT * FROM gl WHERE NOT EXISTS (SELECT 1 FROM st "
            "WHERE st.metric_id = gl.metric_id AND st.entity_uid = gl.entity_uid "
            "AND st.b = gl.b)"
        )
    ctes.append(f"p AS ({picked})")
    if organization_id is None:
        select = "SELECT metric_id, b, val, n, 1 - from_days AS stored, 1 AS entities FROM p"
        return f"WITH {', '.join(ctes)} {select}", params
    # The active parties are counted in the same statement; the outer join keeps that
    # count when no party has a value.
    parties = connection.ops.quote_name(Party._meta.db_table)
    select = (
        "SELECT pc.party_count, r.* FROM (SELECT COUNT(*) AS party_count "
        f"FROM {parties} WHERE organization_id = %s AND is_active) pc LEFT JOIN ("
        "SELECT metric_id, b, SUM(val) AS total, AVG(val) AS mean, MIN(val) AS lo, "
        "MAX(val) AS hi, SUM(n) AS n, SUM(1 - from_days) AS stored, COUNT(*) AS entities "
        "FROM p GROUP BY metric_id, b) r ON 1 = 1"
    )
    params.append(organization_id)
    return f"WITH {', '.join(ctes)} {select}", params


def as_date(raw) -> date:
    """A database date (a date, or ISO text from SQLite)."""
    return raw if isinstance(raw, date) else date.fromisoformat(str(raw))


def _as_decimal(raw) -> Decimal:
    """A database number (a Decimal, or an int or float from SQLite) to 6 decimals."""
    number = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    return number.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_EVEN)


def bucket_rows(
    *,
    definitions: Sequence[MetricDefinition],
    bucket: str,
    start: date,
    end: date,
    entity,
    across_parties: bool = False,
) -> FoundRows:
    """The buckets of ``definitions`` that have values, from one statement. With
    ``across_parties`` the entity is an organization and the rows roll up its active
    parties.

    Only the columns of the unique index (which on PostgreSQL carries ``value`` too) are
    read, so the scan never visits the table; a value's context type is its metric's, so
    the metric filter already keeps to one context.
    """
    if across_parties:
        parties = connection.ops.quote_name(Party._meta.db_table)
        entity_source = f"SELECT uid FROM {parties} WHERE organization_id = %s AND is_active"
        entity_sql = f"v.entity_uid IN ({entity_source})"
        entity_params = [entity.pk]
    else:
        entity_source = "SELECT %s AS uid"
        entity_sql = "v.entity_uid = %s"
        entity_params = [db_uid(entity.uid)]
    sql, params = _series_sql(
        definitions=definitions,
        bucket=bucket,
        start=start,
        end=end,
        entity_sql=entity_sql,
        entity_source=entity_source,
        entity_params=entity_params,
        organization_id=entity.pk if across_parties else None,
    )
    by_id = {definition.pk: definition for definition in definitions}
    rows: dict[tuple[int, date], BucketRow] = {}
    party_count = None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        for raw in cursor.fetchall():
            row = dict(zip(columns, raw, strict=True))
            if across_parties:
                party_count = int(row["party_count"])
                if row["metric_id"] is None:
                    continue
                column = _ACROSS_COLUMN[by_id[row["metric_id"]].aggregation]
            else:
                column = "val"
            rows[(row["metric_id"], as_date(row["b"]))] = BucketRow(
                value=_as_decimal(row[column]),
                count=int(row["n"]),
                stored=int(row["stored"]),
                entities=int(row["entities"]),
            )
    return FoundRows(rows=rows, party_count=party_count)


# --- Points ----------------------------------------------------------------------------------


def ratio(numerator, denominator) -> Decimal | None:
    """``numerator / denominator`` to 4 decimals; ``None`` when the denominator is 0."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(
        RATIO_QUANTUM, rounding=ROUND_HALF_EVEN
    )


def _points(
    *,
    definition: MetricDefinition,
    starts: list[date],
    bucket: str,
    start: date,
    end: date,
    found: FoundRows,
    fill: str | None,
) -> list[dict]:
    rows, party_count = found.rows, found.party_count
    points = []
    previous = None
    for first in starts:
        last = bucket_end(first, bucket)
        days = (min(last, end) - max(first, start)).days + 1
        row = rows.get((definition.pk, first))
        if row is None:
            value, count, source = None, 0, None
            expected = days if party_count is None else days * party_count
        else:
            value, count = row.value, row.count
            source = SOURCE_STORED if row.stored == row.entities else SOURCE_DAYS
            if party_count is None:
                expected = 1 if row.stored else days
            else:
                # A party with a stored value expects that one; every other active
                # party (contributing or not) expects the bucket's days.
                expected = row.stored + (party_count - row.stored) * days
        if value is None and fill == FILL_ZERO:
            value = Decimal(0)
        elif value is None and fill == FILL_PREVIOUS:
            value = previous
        if value is not None:
            previous = value
        point = {
            "start": first,
            "end": last,
            "value": value,
            "count": count,
            "expected": expected,
            "coverage": ratio(count, expected),
            "source": source,
        }
        if party_count is not None:
            point["parties"] = 0 if row is None else row.entities
        points.append(point)
    return points


def _compare_range(
    start: date, end: date, bucket: str, compare: str, buckets: int
) -> tuple[date, date, Callable[[date], date]]:
    """The compared range and the function taking a bucket start to its compared one."""
    if compare == COMPARE_PREVIOUS_PERIOD:

        def shift(day: date) -> date:
            return shift_buckets(day, bucket, -buckets)
    else:

        def shift(day: date) -> date:
            return shift_year(day, bucket)

    return shift(start), shift(end), shift


def _add_comparison(points: list[dict], compared: list[dict], shift, bucket: str) -> None:
    by_start = {point["start"]: point["value"] for point in compared}
    for point in points:
        other = by_start.get(bucket_start(shift(point["start"]), bucket))
        value = point["value"]
        both = value is not None and other is not None
        point["compare_value"] = other
        point["change"] = value - other if both else None
        point["change_pct"] = (
            ratio((value - other) * 100, abs(other)) if both and other != 0 else None
        )


def metric_series(
    *,
    context_type: str,
    entity,
    definitions: Sequence[MetricDefinition],
    bucket: str = Bucket.MONTH,
    start: date,
    end: date,
    fill: str | None = None,
    compare: str | None = None,
    across_parties: bool = False,
) -> dict:
    """The series of ``definitions`` for ``entity`` over ``[start, end]``, as the API's
    ``data``: one statement, two with ``compare``.

    The caller has checked visibility, the metrics' context, ``start <= end`` and the
    bucket limit (``series_range_errors``).
    """
    starts = bucket_starts(start, end, bucket)
    query = {
        "definitions": definitions,
        "bucket": bucket,
        "entity": entity,
        "across_parties": across_parties,
    }
    found = bucket_rows(start=start, end=end, **query)
    if compare:
        compare_start, compare_end, shift = _compare_range(start, end, bucket, compare, len(starts))
        compared = bucket_rows(start=compare_start, end=compare_end, **query)
        compare_starts = bucket_starts(compare_start, compare_end, bucket)
    series = []
    for definition in definitions:
        shape = {"bucket": bucket, "fill": fill, "definition": definition}
        points = _points(starts=starts, start=start, end=end, found=found, **shape)
        if compare:
            earlier = _points(
                starts=compare_starts, start=compare_start, end=compare_end, found=compared, **shape
            )
            _add_comparison(points, earlier, shift, bucket)
        series.append(
            {
                "metric_uid": definition.uid,
                "metric_name": definition.name,
                "aggregation": definition.aggregation,
                "value_type": definition.value_type,
                "storage_unit": definition.storage_unit,
                "points": points,
            }
        )
    return {
        "context_type": context_type,
        "entity_uid": entity.uid,
        "bucket": bucket,
        "start_date": start,
        "end_date": end,
        "series": series,
    }


def series_range_errors(start: date, end: date, bucket: str) -> dict[str, list[str]]:
    """What makes ``[start, end]`` in ``bucket``s unanswerable, by parameter."""
    if start > end:
        return {"start_date": [f"start_date ({start}) is after end_date ({end})."]}
    count = bucket_count(start, end, bucket)
    if count > MAX_BUCKETS:
        return {
            "bucket": [
                f"{start} to {end} holds {count} {bucket} buckets; at most {MAX_BUCKETS} "
                "fit in one answer. Narrow the dates or use a longer bucket."
            ]
        }
    return {}
