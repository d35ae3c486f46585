"""schemathesis over the application's own OpenAPI document, against a real server (issue 12).

Every operation of the document gets a few generated requests that fit the schema and a few that
do not, with an API key, real ids for the path parameters that name a resource of the account,
and a fixed seed: no answer may be a 5xx, and each answer must match the response schema the
document declares for its status. The failures of all operations are gathered and shown together.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from telnyx import Telnyx

from tests.conftest import Account
from tests.support.messaging import Sender
from tests.support.server import RunningServer

SEED = 20261205
EXAMPLES = 4  # per operation and generation mode: a few hundred requests in all
CHECKS = [not_a_server_error, response_schema_conformance]
HANDSET = "+14155550100"
# `/inbox/api/events` is a server-sent event stream: an answer that does not end (its own tests are
# in test_inbox_live.py).
LEFT_OUT = {"GET /inbox/api/events"}


def _real_ids(client: Telnyx, sender: Sender) -> dict[str, str]:
    """Values for the path parameters that name resources of the account."""
    message = client.messages.send(from_=sender.number, to=HANDSET, text="fuzz").data
    config = client.messaging_profiles.autoresp_configs.create(
        profile_id=sender.profile_id, op="stop", keywords=["HALT"], country_code="US"
    ).data
    numbers = client.phone_numbers.messaging.list().data
    assert message is not None and config is not None and numbers
    return {
        "profile_id": sender.profile_id,
        "message_id": message.id,
        "autoresp_cfg_id": config.id,
        "id": numbers[0].id or "",
    }


def _fuzz(
    statuses: list[int],
    operation: Any,
    mode: GenerationMode,
    server: RunningServer,
    headers: dict[str, str],
    path_parameters: dict[str, str],
) -> list[str]:
    """Failures of one operation in one generation mode."""
    failures: list[str] = []
    try:
        strategy = operation.as_strategy(
            generation_mode=mode, path_parameters=path_parameters or None
        )
    except Exception as exc:  # an operation that cannot be negated, e.g. no parameters at all
        return [] if mode is GenerationMode.NEGATIVE else [f"{operation.label}: {exc}"]

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is recorded
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        try:
            response = case.call_and_validate(
                base_url=server.base_url, headers=headers, checks=CHECKS
            )
            statuses.append(response.status_code)
        except (Exception, FailureGroup) as exc:  # a FailureGroup is a BaseExceptionGroup
            failures.append(f"{operation.label} [{mode}]: {exc}\n  {case.as_curl_command()}")

    with contextlib.suppress(Unsatisfiable):  # no example fits the schema: nothing to send
        run()
    return failures


def test_no_server_error_and_responses_match_the_document(
    server: RunningServer, account: Account, sender: Sender
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {account.api_key}"}
    ids = _real_ids(account.client, sender)
    failures: list[str] = []
    statuses: list[int] = []
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in LEFT_OUT:
            continue
        names = {p.name for p in operation.path_parameters}
        fixed = {name: ids[name] for name in names if name in ids}
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _fuzz(statuses, operation, mode, server, headers, fixed)
    elapsed = time.monotonic() - started
    counts = Counter(f"{s // 100}xx" for s in statuses)
    print(
        f"schemathesis: {operations} operations, {len(statuses)} answers {dict(counts)}, "
        f"{len(failures)} failures, in {elapsed:.1f} s"
    )
    assert operations >= 50
    assert not failures, "\n\n".join(failures)
