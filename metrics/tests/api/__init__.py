"""API tests of the metrics app.

The fixtures below are shared by the metric value test modules, which import them by
name (a ``conftest.py`` here would be shared with every other helper's tests).
"""

import pytest

from entities.models import Role
from metrics.constants import ContextType


@pytest.fixture
def party_metric(make_definition):
    return make_definition(
        "party_total_ar",
        name="Party AR",
        context_type=ContextType.PARTY,
        value_type="currency",
        storage_unit="cents",
        is_snapshot=True,
    )


@pytest.fixture
def user_metric(make_definition):
    return make_definition(
        "user_open_tasks", name="Open Tasks", context_type=ContextType.USER, value_type="count"
    )


@pytest.fixture
def dso(make_definition):
    return make_definition(
        "dso", name="DSO", value_type="days", period_definition="trailing_30_days"
    )


@pytest.fixture
def open_invoices(make_definition):
    return make_definition("open_invoice_count", name="Open invoices", value_type="count")


@pytest.fixture
def collector(make_user, organization):
    """A viewer of Acme whose own USER values the tests write."""
    return make_user("collector@acme.test", organization=organization, role=Role.VIEWER)


@pytest.fixture
def scope(request, organization, party, collector, total_ar, party_metric, user_metric):
    """(context_type, entity, definition) for each context type; parametrize indirectly."""
    return {
        ContextType.ORGANIZATION: (ContextType.ORGANIZATION, organization, total_ar),
        ContextType.PARTY: (ContextType.PARTY, party, party_metric),
        ContextType.USER: (ContextType.USER, collector, user_metric),
    }[request.param]
