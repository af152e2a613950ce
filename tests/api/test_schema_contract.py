"""The OpenAPI schema says how each operation fails, and answers look as the schema says.
(tests/hostile/test_api_fuzz.py checks the same over generated requests.)"""

from __future__ import annotations

import pytest

from annotation.models import Role
from tests import factories

pytestmark = pytest.mark.django_db

PUBLIC = {("get", "/api/schema/"), ("post", "/api/auth/token/")}


@pytest.fixture
def schema(anon_client) -> dict:
    return anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_every_operation_documents_its_framework_errors_with_the_error_body(schema):
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        expected = {"401"}
        if (method, path) not in PUBLIC:
            expected |= {"403"}
        if "{" in path:
            expected |= {"404"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        missing = expected - set(responses)
        assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"
        for code, answer in responses.items():
            if code >= "400":
                assert answer["content"]["application/json"]["schema"] == error, (path, code)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/images/{id}/predict/"),
        ("post", "/api/images/{image_id}/everything/"),
        ("post", "/api/auth/token/"),
    ],
)
def test_throttled_operations_document_429(schema, method, path):
    answer = schema["paths"][path][method]["responses"]["429"]

    assert "Retry-After" in answer.get("headers", {}) or "Retry-After" in answer["description"]


def test_the_token_endpoint_needs_no_credentials(schema):
    assert {} in schema["paths"]["/api/auth/token/"]["post"]["security"]


def test_answers_that_are_200_or_201_document_both(schema):
    for path in ("/api/masks/", "/api/sessions/"):
        assert {"200", "201"} <= set(schema["paths"][path]["post"]["responses"]), path
    assert "201" in schema["paths"]["/api/datasets/{id}/members/"]["post"]["responses"]


def test_a_new_dataset_is_answered_with_its_image_count(admin_client):
    response = admin_client.post("/api/datasets/", {"name": "birds"}, format="json")

    assert response.status_code == 201 and response.json()["image_count"] == 0


def test_the_members_list_is_a_plain_list_as_documented(schema, client_for, dataset_admin, dataset):
    answer = schema["paths"]["/api/datasets/{id}/members/"]["get"]["responses"]["200"]
    documented = answer["content"]["application/json"]["schema"]

    response = client_for(dataset_admin).get(f"/api/datasets/{dataset.pk}/members/")

    assert documented["type"] == "array"
    assert isinstance(response.json(), list) and len(response.json()) == 2


def test_adding_a_member_is_a_201(client_for, dataset_admin, dataset, outsider):
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/members/",
        {"username": outsider.username, "role": Role.ANNOTATOR},
        format="json",
    )

    assert response.status_code == 201


def test_a_mask_without_a_prompt_is_documented_with_a_nullable_prompt(
    schema, annotator_client, image
):
    mask = factories.add_mask(image)

    body = annotator_client.get(f"/api/masks/{mask.pk}/").json()

    assert body["prompt"] is None
    prompt = schema["components"]["schemas"]["Mask"]["properties"]["prompt"]
    assert prompt["nullable"] is True
