"""The OpenAPI schema is valid, complete about errors, and served offline."""

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_generated_schema_validates(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


@pytest.mark.django_db
def test_schema_endpoint_serves_valid_openapi(anon_client):
    response = anon_client.get("/api/schema")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    validate_schema(document)
    assert "/api/metrics" in document["paths"]


@pytest.mark.django_db
def test_schema_endpoint_serves_json_on_request(anon_client):
    response = anon_client.get("/api/schema?format=json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Exante Metrics API"


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_every_operation_documents_server_errors(schema):
    for path, method, operation in _operations(schema):
        assert {"500", "503"} <= set(operation["responses"]), (method, path)


def test_authenticated_operations_document_401_403_429(schema):
    for path, method, operation in _operations(schema):
        if operation.get("security") and {} not in operation["security"]:
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)


def test_operations_with_a_body_document_400_413_415(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(operation["responses"]), (method, path)


def test_success_bodies_are_wrapped_in_the_envelope(schema):
    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if code.startswith("2") and "content" in response:
                body = response["content"]["application/json"]["schema"]
                assert set(body["required"]) == {"status", "status_code", "message", "data"}, (
                    method,
                    path,
                )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "bundle"),
    [
        ("/api/docs", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"),
        ("/api/redoc", "/api/redoc/redoc.standalone.js"),
    ],
)
def test_docs_pages_use_local_assets_only(anon_client, path, bundle):
    response = anon_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<script src="{bundle}"></script>' in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def _string_enums(node):
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list) and all(isinstance(v, str) for v in node["enum"]):
            yield node
        for child in node.values():
            yield from _string_enums(child)
    elif isinstance(node, list):
        for child in node:
            yield from _string_enums(child)


def test_enums_of_non_identifiers_carry_member_names(schema):
    named = [node for node in _string_enums(schema) if "x-enum-varnames" in node]
    unnamed = [
        node["enum"]
        for node in _string_enums(schema)
        if "x-enum-varnames" not in node and not all(v.isidentifier() for v in node["enum"])
    ]
    assert unnamed == []
    for node in named:
        assert len(set(node["x-enum-varnames"])) == len(node["enum"])
        assert all(name.isidentifier() for name in node["x-enum-varnames"])
    sort = next(
        parameter["schema"]
        for parameter in schema["paths"]["/api/metrics/values/{context_type}/{entity_uid}"]["get"][
            "parameters"
        ]
        if parameter["name"] == "sort"
    )
    assert dict(zip(sort["enum"], sort["x-enum-varnames"], strict=True)) == {
        "created_at": "CREATED_AT",
        "+created_at": "CREATED_AT_ASC",
        "-created_at": "CREATED_AT_DESC",
        "metric_date": "METRIC_DATE",
        "+metric_date": "METRIC_DATE_ASC",
        "-metric_date": "METRIC_DATE_DESC",
        "value": "VALUE",
        "+value": "VALUE_ASC",
        "-value": "VALUE_DESC",
    }
    scopes = schema["components"]["schemas"]["ScopesEnum"]
    assert scopes["x-enum-varnames"] == [
        "METRICS_READ",
        "METRICS_WRITE",
        "METRICS_ADMIN",
        "ENTITIES_READ",
        "ENTITIES_WRITE",
    ]
