"""Demo data: one organization with parties and users, a catalogue of accounts-receivable
metrics, and realistic histories. Loading is idempotent: every row is looked up by a
natural key, and values go through the ingestion path with ``on_conflict=skip`` (on
PostgreSQL its COPY fast path, so benchmark-sized tables load quickly)."""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.db import transaction

from entities.models import Membership, Organization, Party, Role, User

from .changes import change_context
from .constants import (
    Aggregation,
    ChangeSource,
    ContextType,
    PeriodDefinition,
    StorageUnit,
    TimeUnit,
    ValueType,
)
from .ingest.importer import Importer
from .ingest.items import OnConflict
from .models import MetricDefinition, MetricValue
from .services import metric_value_update

#: Days back from today that the organizations' own feeds missed: a week-long gap the
#: admin's charts show (in a freshly loaded database; later loads fill only new days).
DEMO_GAP_DAYS_AGO = range(45, 52)
#: Days back from today of the demo organization's ``total_ar`` that an analyst corrected,
#: so the value's page has a history.
DEMO_CORRECTION_DAYS_AGO = 20
DEMO_CORRECTION = Decimal(1_250_000)  # 12,500.00 in cents
DEMO_CORRECTION_REASON = "Demo: corrected after the bank statement arrived"

DEMO_DOMAIN = "demo.exante.test"

#: (email, password, role in the demo organization or None, is_staff, is_superuser, group)
DEMO_USERS = [
    (f"admin@{DEMO_DOMAIN}", "demo-admin-pass", Role.ADMIN, True, True, None),
    (f"analyst@{DEMO_DOMAIN}", "demo-analyst-pass", None, True, False, "Analyst"),
    (f"editor@{DEMO_DOMAIN}", "demo-editor-pass", Role.EDITOR, False, False, None),
    (f"viewer@{DEMO_DOMAIN}", "demo-viewer-pass", Role.VIEWER, False, False, None),
]

ORG, P, U = ContextType.ORGANIZATION, ContextType.PARTY, ContextType.USER
CUR, PCT, DAYS, CNT, RAT = (
    ValueType.CURRENCY,
    ValueType.PERCENTAGE,
    ValueType.DAYS,
    ValueType.COUNT,
    ValueType.RATIO,
)
LAST, AVG, SUM = Aggregation.LAST, Aggregation.AVERAGE, Aggregation.SUM
AS_OF, T30, CAL, MTD = (
    PeriodDefinition.AS_OF_DATE,
    PeriodDefinition.TRAILING_30_DAYS,
    PeriodDefinition.CALENDAR_MONTH,
    PeriodDefinition.MONTH_TO_DATE,
)


@dataclass(frozen=True)
class DemoMetric:
    uid: str
    name: str
    context_type: str
    value_type: str
    storage_unit: str
    is_snapshot: bool
    period_definition: str
    aggregation: str
    base: float  # typical level
    description: str


DEMO_METRICS = [
    DemoMetric(
        "total_ar",
        "Total AR Outstanding",
        ORG,
        CUR,
        StorageUnit.CENTS,
        True,
        AS_OF,
        LAST,
        350_000_00,
        "Sum of open receivables at the end of the day.",
    ),
    DemoMetric(
        "current_ar",
        "Current AR",
        ORG,
        CUR,
        StorageUnit.CENTS,
        True,
        AS_OF,
        LAST,
        240_000_00,
        "Open receivables not yet due.",
    ),
    DemoMetric(
        "overdue_ar",
        "Overdue AR",
        ORG,
        CUR,
        StorageUnit.CENTS,
        True,
        AS_OF,
        LAST,
        110_000_00,
        "Open receivables past their due date.",
    ),
    DemoMetric(
        "dso",
        "Days Sales Outstanding",
        ORG,
        DAYS,
        StorageUnit.RAW,
        True,
        T30,
        AVG,
        42,
        "Receivables ÷ credit sales × 30, over the trailing 30 days.",
    ),
    DemoMetric(
        "collected_amount",
        "Collected Amount",
        ORG,
        CUR,
        StorageUnit.CENTS,
        False,
        CAL,
        SUM,
        9_500_00,
        "Payments received in the period.",
    ),
    DemoMetric(
        "invoiced_amount",
        "Invoiced Amount",
        ORG,
        CUR,
        StorageUnit.CENTS,
        False,
        CAL,
        SUM,
        10_000_00,
        "Invoices issued in the period.",
    ),
    DemoMetric(
        "open_invoice_count",
        "Open Invoices",
        ORG,
        CNT,
        StorageUnit.RAW,
        True,
        AS_OF,
        LAST,
        180,
        "Invoices with an open balance.",
    ),
    DemoMetric(
        "overdue_invoice_count",
        "Overdue Invoices",
        ORG,
        CNT,
        StorageUnit.RAW,
        True,
        AS_OF,
        LAST,
        55,
        "Invoices past due with an open balance.",
    ),
    DemoMetric(
        "collection_rate",
        "Collection Rate",
        ORG,
        PCT,
        StorageUnit.RAW,
        False,
        MTD,
        AVG,
        87.5,
        "Collected ÷ due in the month to date, in percent.",
    ),
    DemoMetric(
        "cei",
        "Collection Effectiveness Index",
        ORG,
        RAT,
        StorageUnit.RAW,
        False,
        CAL,
        AVG,
        0.82,
        "Share of collectible receivables collected in the period.",
    ),
    DemoMetric(
        "party_total_ar",
        "Party AR Outstanding",
        P,
        CUR,
        StorageUnit.CENTS,
        True,
        AS_OF,
        LAST,
        25_000_00,
        "Open receivables of one customer.",
    ),
    DemoMetric(
        "party_overdue_ar",
        "Party Overdue AR",
        P,
        CUR,
        StorageUnit.CENTS,
        True,
        AS_OF,
        LAST,
        7_500_00,
        "Overdue receivables of one customer.",
    ),
    DemoMetric(
        "party_avg_days_to_pay",
        "Average Days to Pay",
        P,
        DAYS,
        StorageUnit.RAW,
        True,
        T30,
        AVG,
        35,
        "Average days between invoice and payment, trailing 30 days.",
    ),
    DemoMetric(
        "user_collected_amount",
        "Collected by Collector",
        U,
        CUR,
        StorageUnit.CENTS,
        False,
        CAL,
        SUM,
        3_000_00,
        "Payments collected by one collector in the period.",
    ),
    DemoMetric(
        "user_open_tasks",
        "Open Collection Tasks",
        U,
        CNT,
        StorageUnit.RAW,
        True,
        AS_OF,
        LAST,
        24,
        "Follow-ups assigned to one collector.",
    ),
]

DEMO_PARTIES = [
    ("Initech", "CUST-1001"),
    ("Umbrella Corporation", "CUST-1002"),
    ("Soylent Industries", "CUST-1003"),
    ("Stark Logistics", "CUST-1004"),
    ("Wayne Supplies", "CUST-1005"),
]


def ensure_catalogue() -> dict[str, MetricDefinition]:
    definitions = {}
    for metric in DEMO_METRICS:
        definition, _ = MetricDefinition.objects.get_or_create(
            uid=metric.uid,
            defaults={
                "name": metric.name,
                "context_type": metric.context_type,
                "value_type": metric.value_type,
                "storage_unit": metric.storage_unit,
                "is_snapshot": metric.is_snapshot,
                "period_definition": metric.period_definition,
                "aggregation": metric.aggregation,
                "description": metric.description,
            },
        )
        definitions[metric.uid] = definition
    return definitions


def ensure_users(organization: Organization) -> list[User]:
    users = []
    for email, password, role, is_staff, is_superuser, group in DEMO_USERS:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email,
                password,
                is_staff=is_staff,
                is_superuser=is_superuser,
                first_name=email.split("@")[0].title(),
                last_name="Demo",
            )
        if role is not None:
            Membership.objects.get_or_create(
                user=user, organization=organization, defaults={"role": role}
            )
        if group and (found := Group.objects.filter(name=group).first()):
            user.groups.add(found)
        users.append(user)
    return users


def _series(metric: DemoMetric, rng: random.Random, days: int, scale: float) -> list[Decimal]:
    """A seasonal random walk around the metric's base level, one point per day."""
    level = metric.base * scale
    points = []
    for day in range(days):
        level *= 1 + rng.gauss(0, 0.01)
        seasonal = 1 + 0.05 * math.sin(2 * math.pi * day / 30)
        raw = max(level * seasonal, 0)
        points.append(_quantize(metric, raw))
    return points


def _quantize(metric: DemoMetric, raw: float) -> Decimal:
    if metric.value_type == ValueType.COUNT or metric.storage_unit == StorageUnit.CENTS:
        return Decimal(round(raw))
    if metric.value_type == ValueType.PERCENTAGE:
        return Decimal(str(round(min(raw, 100.0), 2)))
    return Decimal(str(round(raw, 4)))


def generate_values(
    *,
    entities: list[tuple[str, object, str]],
    days: int,
    today: date,
    seed: int = 7,
) -> Iterator[dict]:
    """Daily values for the last ``days`` days plus monthly values (the month's last
    daily figure for snapshots, the month's sum for flows) for every entity/metric pair,
    as bulk items (the import columns).

    ``entities`` holds (context_type, uid, timezone) tuples. Organizations have no day
    values for ``DEMO_GAP_DAYS_AGO`` (their month values still count every day).
    """
    start = today - timedelta(days=days - 1)
    gap = {today - timedelta(days=ago) for ago in DEMO_GAP_DAYS_AGO}
    for context_type, entity_uid, timezone in entities:
        rng = random.Random(f"{seed}-{entity_uid}")
        scale = 0.5 + rng.random()
        for metric in DEMO_METRICS:
            if metric.context_type != context_type:
                continue
            series = _series(metric, rng, days, scale)
            monthly: dict[date, list[Decimal]] = {}
            for offset, value in enumerate(series):
                day = start + timedelta(days=offset)
                monthly.setdefault(day.replace(day=1), []).append(value)
                if context_type == ORG and day in gap:
                    continue
                yield {
                    "context_type": context_type,
                    "entity_uid": entity_uid,
                    "metric_uid": metric.uid,
                    "time_unit": TimeUnit.DAY.value,
                    "metric_date": day.isoformat(),
                    "value": value,
                    "timezone": timezone,
                    "_metadata": {"source": "demo", "generator": "seed_demo"},
                }
            for month, values in monthly.items():
                if metric.is_snapshot:
                    value = values[-1]
                elif metric.value_type in (CUR, CNT):
                    value = sum(values, Decimal(0))
                else:
                    value = _quantize(metric, float(sum(values)) / len(values))
                yield {
                    "context_type": context_type,
                    "entity_uid": entity_uid,
                    "metric_uid": metric.uid,
                    "time_unit": TimeUnit.MONTH.value,
                    "metric_date": month.isoformat(),
                    "value": value,
                    "timezone": timezone,
                    "_metadata": {"source": "demo", "days": len(values)},
                }


def load_values(items: Iterator[dict], batch_size: int = 20_000) -> int:
    """Through the ingestion path (the COPY fast path on PostgreSQL), skipping keys that
    exist, so loading twice changes nothing; returns the rows offered."""
    importer = Importer(on_conflict=OnConflict.SKIP, batch_size=batch_size)
    summary = importer.run(enumerate(items, start=1))
    if summary.failed:
        raise RuntimeError(f"{summary.failed} demo values were rejected")
    return summary.rows


def ensure_parties(organization: Organization, count: int) -> list[Party]:
    """The organization's demo parties, created in one statement where missing."""
    wanted = [
        DEMO_PARTIES[number]
        if number < len(DEMO_PARTIES)
        else (f"Customer {number + 1}", f"CUST-{1001 + number}")
        for number in range(count)
    ]
    refs = [ref for _name, ref in wanted]
    existing = set(
        Party.objects.filter(organization=organization, external_ref__in=refs).values_list(
            "external_ref", flat=True
        )
    )
    Party.objects.bulk_create(
        Party(organization=organization, name=name, external_ref=ref)
        for name, ref in wanted
        if ref not in existing
    )
    by_ref = {
        p.external_ref: p
        for p in Party.objects.filter(organization=organization, external_ref__in=refs)
    }
    return [by_ref[ref] for ref in refs]


def ensure_correction(organization: Organization, analyst: User, day: date) -> None:
    """One corrected value with a history, made once: a value already changed (version
    above 1) is left alone."""
    value = MetricValue.objects.filter(
        entity_uid=organization.uid,
        metric__uid="total_ar",
        time_unit=TimeUnit.DAY,
        metric_date=day,
    ).first()
    if value is None or value.version > 1:
        return
    with change_context(source=ChangeSource.ADMIN, user=analyst, reason=DEMO_CORRECTION_REASON):
        metric_value_update(instance=value, value=value.value + DEMO_CORRECTION)


@transaction.atomic
def seed_demo(*, organizations: int = 1, parties: int = 5, days: int = 365, today: date) -> dict:
    """Load the demo catalogue, entities and histories; safe to run any number of times."""
    ensure_catalogue()
    demo_org, _ = Organization.objects.get_or_create(
        name="Demo Receivables Inc.", defaults={"timezone": "America/Los_Angeles"}
    )
    users = ensure_users(demo_org)
    orgs = [demo_org]
    for number in range(2, organizations + 1):
        org, _ = Organization.objects.get_or_create(
            name=f"Demo Organization {number}", defaults={"timezone": "UTC"}
        )
        orgs.append(org)
    entities: list[tuple[str, object, str]] = []
    for org in orgs:
        entities.append((ORG, org.uid, org.timezone))
        for party in ensure_parties(org, parties):
            entities.append((P, party.uid, org.timezone))
    for user in users:
        if not user.is_staff:
            entities.append((U, user.uid, user.timezone))
    offered = load_values(generate_values(entities=entities, days=days, today=today))
    analyst = next(user for user in users if user.email == f"analyst@{DEMO_DOMAIN}")
    ensure_correction(demo_org, analyst, today - timedelta(days=DEMO_CORRECTION_DAYS_AGO))
    return {
        "organizations": len(orgs),
        "entities": len(entities),
        "values_offered": offered,
        "values_total": MetricValue.objects.count(),
    }
