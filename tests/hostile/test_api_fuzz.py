"""Property-based fuzzing of the whole API against its own OpenAPI schema (Schemathesis).

Every operation of the live schema (/api/schema/) gets generated requests, both ones that fit
the schema and ones that break it (wrong types, missing fields, out-of-range values), sent
through the WSGI application as an annotator and as a dataset admin (token authentication).
Each answer must pass Schemathesis' checks:
- not_a_server_error: no 5xx, whatever the input;
- status_code_conformance: the status is one the schema documents for the operation;
- content_type_conformance: the Content-Type is one the schema documents;
- response_schema_conformance: the body matches the schema of that status.

Path ids, and ids, masks and prompts in bodies, are drawn partly from seeded objects (a dataset
with images, masks, a session, jobs, model versions), so requests reach past the 404s into the
views; partly from the edges of the database's integers (2^63 and beyond), with RLE runs that
overflow, and with JSON nested deeper than the API reads. Each request runs in a savepoint
that is rolled back: every example sees the same data (a DELETE does not starve the examples
after it), and queued tasks never run.

Bounded for CI (about a minute per database on two cores); tune with environment variables:
    SADE_FUZZ_EXAMPLES   examples per operation and role (default 30)
    SADE_FUZZ_SEED       Hypothesis seed (default 0; the run is reproducible)
    SADE_FUZZ_ONLY       only operations whose label ("POST /api/masks/") contains this
    SADE_FUZZ_SHRINK=1   shrink a failing example to a minimal one (slower)
The counts (operations, requests, failures) are printed in the terminal summary.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import traceback
import uuid
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotation.models import AutomaticPass, Export, ImportJob, Label, Mask, Role, Stage
from annotation.services.audits import start_audit
from annotation.services.automatic_config import resolve_config
from annotation.services.exports import run_export
from annotation.services.image_holds import claim_next_image
from annotation.services.masks import accept_mask
from annotation.services.sessions import start_session
from modeltrain.models import TrainingRound
from tests import factories

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SADE_FUZZ_EXAMPLES", "30"))
SEED = int(os.environ.get("SADE_FUZZ_SEED", "0"))
ONLY = os.environ.get("SADE_FUZZ_ONLY", "")
SHRINK = os.environ.get("SADE_FUZZ_SHRINK", "") == "1"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Checks left out for one operation, and why (each is someone's open work, to be removed then).
EXCLUDED_CHECKS: dict[str, list] = {}
PASSWORD = "pw-for-tests"
# Operations with fewer examples, and why: the schema endpoint renders the whole schema on
# each call (about half a second) and takes nothing but ?format= and ?lang=.
EXAMPLES_FOR = {"GET /api/schema/": 3}
# The resource a path parameter names: "{id}" is the first path segment's own.
PATH_RESOURCES = {
    "dataset_id": "datasets",
    "image_id": "images",
    "user_id": "users",
    "label_id": "labels",
}
# Integers at the edges of what the database stores (signed 32- and 64-bit), and past them.
EDGE_INTEGERS = [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]
# Query parameters that are numbers without naming an object.
NUMBER_PARAMETERS = {"limit", "offset", "shard", "count", "version"}
# Deeper than annotation.api.parsers.MAX_JSON_DEPTH, shallow enough for the client to encode.
DEEP = 40
# Body and query fields that hold ids, and the resource they name.
ID_FIELDS = {
    "image": "images",
    "dataset": "datasets",
    "session": "sessions",
    "model_version": "model-versions",
    "user": "users",
    "label": "labels",
}


@dataclass
class RoleRun:
    role: str
    operations: int = 0
    requests: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds_by_operation: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


RUNS: list[RoleRun] = []


class FuzzSummary:
    """Registered at run time (a test module cannot hold hooks): prints the counts after the
    run, whatever the output capture."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not RUNS:
            return
        terminalreporter.section("API fuzzing (Schemathesis)")
        for run in RUNS:
            codes = ", ".join(f"{code}: {n}" for code, n in sorted(run.statuses.items()))
            slowest = sorted(run.seconds_by_operation.items(), key=lambda item: -item[1])[:3]
            terminalreporter.write_line(
                f"{run.role}: {run.operations} operations, {run.requests} requests, "
                f"{len(run.failures)} failures in {run.seconds:.0f} s ({codes}); slowest: "
                + ", ".join(f"{label} {seconds:.0f} s" for label, seconds in slowest)
            )
        total = sum(run.requests for run in RUNS)
        failures = sum(len(run.failures) for run in RUNS)
        terminalreporter.write_line(
            f"total: {total} requests, {failures} failures "
            f"({EXAMPLES} examples per operation and role, seed {SEED})"
        )


@pytest.fixture(autouse=True)
def _summary(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("sade-fuzz-summary"):
        manager.register(FuzzSummary(), "sade-fuzz-summary")


@pytest.fixture
def wsgi_app():
    """The real WSGI application, in this thread: it sees the test's transaction. Django closes
    the database connection at each request's start and end, which would end that transaction;
    Django's own test client switches that off the same way."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def server_errors():
    """Tracebacks of the exceptions behind 500 answers, for the failure report."""
    caught: list[str] = []

    def record(sender, request=None, **kwargs):
        caught.append(traceback.format_exc(limit=-8))

    signals.got_request_exception.connect(record)
    yield caught
    signals.got_request_exception.disconnect(record)


@pytest.fixture
def world(isolated_storage, tiny_model):
    """Everything the operations can name: users with tokens, a dataset with images, masks,
    a session, an import job, a finished export, a queued automatic pass, a queued training
    round, two model versions; and an outsider's dataset, whose ids must answer 404."""
    staff = factories.make_user("root", staff=True)
    annotator = factories.make_user("annie")
    admin = factories.make_user("dana")
    outsider = factories.make_user("otto")
    dataset = factories.make_dataset("cats", [(annotator, Role.ANNOTATOR), (admin, Role.ADMIN)])
    other = factories.make_dataset("dogs", [(outsider, Role.ANNOTATOR)])
    images = [factories.add_image(dataset, seed=seed) for seed in range(3)]
    hidden = factories.add_image(other, seed=9)
    claim_next_image(dataset, annotator, Stage.ASSISTED_MANUAL)
    held = images[0]
    held.refresh_from_db()
    rect = factories.rect_rle(held, 4, 4, 20, 16)
    mask, _ = accept_mask(
        held,
        annotator,
        rle=rect,
        source="manual",
        prompt={"points": [[10, 10]], "labels": [1]},
    )
    other_mask = factories.add_mask(images[1], source="automatic", model_version=tiny_model)
    hidden_mask = factories.add_mask(hidden)
    label = Label.objects.create(dataset=dataset, name="cat", color="#ff8800")
    hidden_label = Label.objects.create(dataset=other, name="dog")
    session, _ = start_session(held, annotator)
    child = factories.child_version(tiny_model, round=1)
    job = ImportJob.objects.create(dataset=dataset, path="/nonexistent", created_by=staff)
    export = Export.objects.create(dataset=dataset, format=Export.Format.COCO, created_by=admin)
    run_export(export)
    automatic_pass = AutomaticPass.objects.create(
        dataset=dataset,
        kind=AutomaticPass.Kind.AUTOMATIC,
        stage=Stage.FULLY_AUTOMATIC,
        config=resolve_config("automatic", {"points_per_side": 2, "crop_n_layers": 0}),
        model_version=tiny_model,
        created_by=admin,
    )
    audit = start_audit(dataset, admin, sample_size=1)
    training_round = TrainingRound.objects.create(
        dataset=dataset, parent=tiny_model, config={"steps": 1}, total_steps=1
    )
    return {
        "tokens": {
            "annotator": Token.objects.create(user=annotator).key,
            "dataset_admin": Token.objects.create(user=admin).key,
        },
        "ids": {
            "datasets": [dataset.pk, other.pk],
            "images": [held.pk, images[1].pk, images[2].pk, hidden.pk],
            "masks": [mask.pk, other_mask.pk, hidden_mask.pk],
            "sessions": [session.pk],
            "import-jobs": [job.pk],
            "exports": [export.pk],
            "automatic-passes": [automatic_pass.pk],
            "audits": [audit.pk],
            "model-versions": [tiny_model.pk, child.pk],
            "training-rounds": [training_round.pk],
            "users": [annotator.pk, admin.pk, outsider.pk],
            "labels": [label.pk, hidden_label.pk],
        },
        "values": {
            "username": ["annie", "dana", "otto"],
            "password": [PASSWORD],
            # Two good masks, and runs past 2^63, and runs whose sum wraps around 2^64 to
            # exactly 48 x 64 (both once stored, then crashed exports).
            "rle": [
                rect,
                factories.rect_rle(held, 0, 0, 64, 48),
                {"size": [48, 64], "counts": [2**63, 3072]},
                {"size": [48, 64], "counts": [2**64 - 5, 3077]},
            ],
            "points": [[[30.0, 20.0]], [[5.0, 5.0], [40.0, 30.0]]],
            "labels": [[1], [1, 0]],
            "box": [[2.0, 2.0, 30.0, 30.0]],
            "version": [1, 2],
            "client_id": [str(uuid.UUID(int=1))],
        },
    }


# Longer runs (SADE_FUZZ_EXAMPLES) get a longer limit than the suite's 600 s per test.
@pytest.mark.timeout(max(600, EXAMPLES * 12))
@pytest.mark.parametrize("role", ["annotator", "dataset_admin"])
def test_no_request_breaks_the_api_contract(role, world, wsgi_app, server_errors, settings):
    # "Everything" is rate-limited to a few calls a minute; here every example should reach
    # the view, so that its validation and answer are fuzzed too (the tiny model is fast).
    settings.EVERYTHING_RATE = ""
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    run = RoleRun(role)
    RUNS.append(run)
    started = time.monotonic()
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if ONLY and ONLY not in operation.label:
                continue
            run.operations += 1
            operation_started = time.monotonic()
            fuzz_operation(operation, world, world["tokens"][role], run, server_errors)
            run.seconds_by_operation[operation.label] = time.monotonic() - operation_started
    finally:
        run.seconds = time.monotonic() - started

    assert ONLY or run.operations >= 60, "the schema lost operations"
    assert not run.failures, f"{len(run.failures)} operations failed:\n\n" + "\n\n".join(
        run.failures
    )


def fuzz_operation(operation, world: dict, token: str, run: RoleRun, server_errors) -> None:
    label = operation.label
    checks = [c for c in CHECKS if c not in EXCLUDED_CHECKS.get(label, [])]

    @seed(SEED)
    @hypothesis_settings(
        max_examples=EXAMPLES_FOR.get(label, EXAMPLES),
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else []),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=case_strategy(operation, world["ids"]), data=st.data())
    def check_one(case, data):
        steer(case, data, world)
        case.headers["Authorization"] = f"Token {token}"
        server_errors.clear()
        with transaction.atomic():
            response = case.call()
            transaction.set_rollback(True)
        run.requests += 1
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=checks)

    try:
        check_one()
    except (KeyboardInterrupt, SystemExit, pytest.fail.Exception):
        raise
    except BaseException as exc:  # Schemathesis' FailureGroup is an exception group
        run.failures.append(describe_failure(label, exc, server_errors))


def case_strategy(operation, ids: dict):
    """Generated requests, half of them with the path naming seeded objects."""
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for path_parameters in [None, *known_path_parameters(operation.path, ids)]:
            try:
                strategies.append(operation.as_strategy(mode, path_parameters=path_parameters))
            except Exception:  # nothing to negate in this operation
                continue
    return st.one_of(strategies)


def known_path_parameters(path: str, ids: dict) -> list[dict]:
    """Path parameters naming seeded objects (every combination), and one past the database's
    integers."""
    names = re.findall(r"{(\w+)}", path)
    if not names:
        return []
    own = path.split("/")[2]
    pools = [ids[PATH_RESOURCES.get(name, own)] for name in names]
    known = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*pools)]
    return [*known, dict.fromkeys(names, 2**64)]


def steer(case, data, world: dict) -> None:
    """Now and then put a seeded id or a well-formed value where the schema has a field of
    that name, so that bodies get past the first 400 and reach the service; or an integer at
    the edges of the database's range, or JSON nested deeper than the API reads."""
    ids, values = world["ids"], world["values"]
    if isinstance(case.body, dict):
        for key in list(case.body):
            if key in ID_FIELDS and data.draw(st.booleans()):
                case.body[key] = edge_or(data, ids[ID_FIELDS[key]])
            elif key == "image_ids" and data.draw(st.booleans()):
                case.body[key] = data.draw(
                    st.lists(edge_or_strategy(ids["images"]), min_size=1, max_size=3)
                )
            elif key in values and data.draw(st.booleans()):
                case.body[key] = data.draw(st.sampled_from(values[key]))
        if (
            case.body
            and case.media_type == "application/json"
            and data.draw(st.integers(0, 9)) == 0
        ):
            case.body[data.draw(st.sampled_from(sorted(case.body)))] = nested(DEEP)
    for parameter in case.operation.query:
        name = parameter.name
        pool = ids[ID_FIELDS[name]] if name in ID_FIELDS else [1, 2, 5]
        if (name in ID_FIELDS or name in NUMBER_PARAMETERS) and data.draw(st.booleans()):
            case.query = {**(case.query or {}), name: str(edge_or(data, pool))}


def edge_or_strategy(pool: list[int]) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(pool), st.sampled_from(EDGE_INTEGERS))


def edge_or(data, pool: list[int]) -> int:
    return data.draw(edge_or_strategy(pool))


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def describe_failure(label: str, exc: BaseException, server_errors: list[str]) -> str:
    """Schemathesis' message names the check, the answer and a curl command to reproduce."""
    lines = [f"{label}: {type(exc).__name__}: {str(exc)[:3000]}"]
    if server_errors:
        lines.append("server traceback:\n" + server_errors[-1])
    return "\n".join(lines)


def test_the_fuzzer_reaches_the_views(world, wsgi_app):
    """A guard on the harness: a well-formed request as a member succeeds, so the fuzzing
    above is not 401s or 404s all the way down."""
    from werkzeug.test import Client

    client = Client(wsgi_app)
    headers = {"Authorization": f"Token {world['tokens']['annotator']}"}
    masks = client.get(f"/api/masks/{world['ids']['masks'][0]}/", headers=headers)
    assert masks.status_code == 200, masks.get_data()
    assert Mask.objects.count() == 3
