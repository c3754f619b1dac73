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
@pytest.mark.parametrize("path", ["/api/docs", "/api/redoc"])
def test_docs_pages_use_local_assets_only(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
