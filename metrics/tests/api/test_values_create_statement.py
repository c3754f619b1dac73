"""The value create's one statement against the rules it restates in SQL.

``metric_value_create_checked`` checks in SQL what ``value_create_scope`` (visibility),
``metric_value_build`` (the definition's rules) and ``can_write_values`` (the write
permission) decide in Python. One table of callers × entities × definitions × values runs
through both; every answer must agree.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework_simplejwt.tokens import RefreshToken

from entities.models import ApiKey, Membership, Organization, Party, Role, User
from entities.permissions import can_write_values
from metrics import selectors, services
from metrics.ingest.create import metric_value_create_checked
from metrics.models import MetricDefinition, MetricValue
from metrics.services import EntityRef

pytestmark = pytest.mark.django_db


def _through(key: ApiKey) -> User:
    """The key's user as key authentication hands it over."""
    user = User.objects.get(pk=key.user_id)
    user.api_key = ApiKey.objects.select_related("membership").get(pk=key.pk)
    return user


@pytest.fixture
def matrix(make_user, make_api_key):
    acme = Organization.objects.create(name="Acme", timezone="Europe/Paris")
    globex = Organization.objects.create(name="Globex")
    users = {
        "viewer": make_user(organization=acme, role=Role.VIEWER),
        "editor": make_user(organization=acme, role=Role.EDITOR),
        "admin": make_user(organization=acme, role=Role.ADMIN),
        "outsider": make_user(organization=globex, role=Role.ADMIN),
        "staff": make_user(is_staff=True),
        "loner": make_user(),
    }
    callers = dict(users)
    callers["editor_key"] = _through(make_api_key(users["editor"], acme)[0])
    callers["editor_read_key"] = _through(
        make_api_key(users["editor"], acme, scopes=["metrics:read"])[0]
    )
    callers["viewer_key"] = _through(make_api_key(users["viewer"], acme)[0])
    Membership.objects.create(user=users["staff"], organization=acme, role=Role.VIEWER)
    callers["staff_key"] = _through(make_api_key(users["staff"], acme)[0])
    entities = {
        "acme": ("ORGANIZATION", acme),
        "globex": ("ORGANIZATION", globex),
        "acme_party": ("PARTY", Party.objects.create(organization=acme, name="C1")),
        "globex_party": ("PARTY", Party.objects.create(organization=globex, name="C2")),
        "viewer_user": ("USER", users["viewer"]),
        "editor_user": ("USER", users["editor"]),
        "outsider_user": ("USER", users["outsider"]),
        "loner_user": ("USER", users["loner"]),
    }
    definitions = {}
    for context in ("ORGANIZATION", "PARTY", "USER"):
        lower = context.lower()
        definitions[(context, "plain")] = MetricDefinition.objects.create(
            uid=f"{lower}_ratio", name="Ratio", context_type=context, value_type="ratio"
        )
        definitions[(context, "count")] = MetricDefinition.objects.create(
            uid=f"{lower}_count", name="Count", context_type=context, value_type="count"
        )
        definitions[(context, "cents")] = MetricDefinition.objects.create(
            uid=f"{lower}_cents",
            name="Cents",
            context_type=context,
            value_type="currency",
            storage_unit="cents",
        )
        definitions[(context, "inactive")] = MetricDefinition.objects.create(
            uid=f"{lower}_retired", name="Retired", context_type=context, is_active=False
        )
    return callers, entities, definitions


def _python_accepts(user, context_type, entity, definition, value) -> bool:
    scope = selectors.value_create_scope(
        context_type=context_type, entity_uid=entity.uid, user=user, metric_uid=definition.uid
    )
    if scope is None:
        return False
    try:
        services.metric_value_build(
            definition=scope.definition,
            metric_uid=definition.uid,
            entity=EntityRef.of(context_type, scope.entity),
            metric_date=date(2026, 3, 1),
            value=value,
        )
    except ValidationError:
        return False
    return can_write_values(user, scope.entity, role=scope.role)


def _sql_accepts(user, context_type, entity, definition, value) -> bool:
    fields = services.metric_value_fields(metric_date=date(2026, 3, 1), value=value)
    with transaction.atomic():
        created = metric_value_create_checked(
            user=user,
            context_type=context_type,
            entity_uid=entity.uid,
            metric_uid=definition.uid,
            fields=fields,
        )
        transaction.set_rollback(True)
    return created is not None


VALUES = [Decimal("2"), Decimal("-1"), Decimal("1.5")]


def test_the_statement_and_the_python_rules_agree_on_every_case(matrix):
    callers, entities, definitions = matrix
    disagreements, accepted, refused = [], 0, 0
    for caller_name, user in callers.items():
        for entity_name, (context_type, entity) in entities.items():
            for kind in ("plain", "count", "cents", "inactive"):
                for other_context in {context_type, "ORGANIZATION"}:
                    definition = definitions[(other_context, kind)]
                    for value in VALUES:
                        python = _python_accepts(user, context_type, entity, definition, value)
                        sql = _sql_accepts(user, context_type, entity, definition, value)
                        accepted += python
                        refused += not python
                        if python != sql:
                            case = (caller_name, entity_name, definition.uid, str(value))
                            disagreements.append((case, python, sql))
    assert disagreements == []
    # The table reaches both answers often enough to mean something.
    assert accepted > 50 and refused > 200
    assert MetricValue.objects.count() == 0


def test_the_statement_applies_the_entity_organizations_timezone(matrix):
    callers, entities, definitions = matrix
    _, party = entities["acme_party"]
    fields = services.metric_value_fields(metric_date=date(2026, 3, 1), value=Decimal(5))
    created = metric_value_create_checked(
        user=callers["editor"],
        context_type="PARTY",
        entity_uid=party.uid,
        metric_uid=definitions[("PARTY", "plain")].uid,
        fields=fields,
    )
    assert created.timezone == "Europe/Paris"
    assert MetricValue.objects.get(uid=created.uid).timezone == "Europe/Paris"


# --- Through the API: a token whose user is gone or inactive ------------------------------------


def _post(client, organization, total_ar):
    return client.post(
        f"/api/metrics/values/ORGANIZATION/{organization.uid}",
        {"metric_uid": total_ar.uid, "metric_date": "2026-03-15", "value": 1},
        format="json",
    )


def test_a_deactivated_users_token_cannot_create(editor, organization, total_ar, client_for):
    client = client_for(editor)
    User.objects.filter(pk=editor.pk).update(is_active=False)
    response = _post(client, organization, total_ar)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert MetricValue.objects.count() == 0


def test_a_deleted_users_token_cannot_create(make_user, organization, total_ar, anon_client):
    gone = make_user(organization=organization, role=Role.EDITOR)
    token = str(RefreshToken.for_user(gone).access_token)
    gone.delete()
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = _post(anon_client, organization, total_ar)
    assert response.status_code == 401
    assert MetricValue.objects.count() == 0


def test_a_membership_removed_refuses_the_next_create(editor, organization, total_ar, client_for):
    client = client_for(editor)
    Membership.objects.filter(user=editor).delete()
    response = _post(client, organization, total_ar)
    assert response.status_code == 404
    assert MetricValue.objects.count() == 0
