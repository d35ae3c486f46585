"""Every operation of the product brief through the official Node SDK (`telnyx` on npm).

Skipped, with the reason shown, when Node.js is missing or the SDK cannot be installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from signalpost.context import AppContext
from signalpost.numbers import orders
from signalpost.numbers import service as numbers
from signalpost.numbers.schemas import NumberOrderCreate
from tests.conftest import Account
from tests.support.server import RunningServer

HERE = Path(__file__).parent / "node"
SDK_DIR = Path(__file__).resolve().parents[2] / ".node-sdk"


def _node_sdk() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm not installed")
    if not (SDK_DIR / "node_modules" / "telnyx").exists():
        SDK_DIR.mkdir(exist_ok=True)
        try:
            done = subprocess.run(
                ["npm", "install", "--prefix", str(SDK_DIR), "--no-audit", "--no-fund", "telnyx@7"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("installing the Node SDK from the npm registry timed out")
        if done.returncode != 0:
            pytest.skip(f"cannot install the Node SDK: {done.stderr[-300:]}")
    return SDK_DIR / "node_modules"


def test_brief_operations_through_the_node_sdk(server: RunningServer, account: Account) -> None:
    modules = _node_sdk()
    sender, mobile = "+13125551234", "+13125550777"

    account.client.number_orders.create(phone_numbers=[{"phone_number": sender}])

    async def setup(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            await orders.create_order(
                uow,
                account.org.id,
                NumberOrderCreate.model_validate({"phone_numbers": [{"phone_number": mobile}]}),
                mobile=True,
            )
            await numbers.set_whatsapp(uow, account.org.id, sender, True)
            row = await numbers.add_short_code(uow, account.org.id, "55555")
            return str(row["id"])

    short_id = server.run(setup)
    env = {
        **os.environ,
        "NODE_PATH": str(modules),
        "TELNYX_BASE_URL": f"{server.base_url}/v2",
        "TELNYX_API_KEY": account.api_key,
        "FROM": sender,
        "SHORT": "55555",
        "SHORT_ID": short_id,
        "MOBILE": mobile,
        "HOOK": "http://127.0.0.1:9/unused",
    }
    script = HERE / "seed.mjs"
    shutil.copy(script, modules.parent / "seed.mjs")
    done = subprocess.run(
        ["node", str(modules.parent / "seed.mjs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert done.returncode == 0 and not failed, done.stdout + done.stderr
    for op in (
        "messages.send",
        "messages.retrieve",
        "messages.schedule",
        "messages.cancelScheduled",
        "messages.whatsapp",
        "messages.sendGroupMms",
        "messages.sendLongCode",
        "messages.sendNumberPool",
        "messages.sendShortCode",
        "messagingOptouts.list",
        "phoneNumbers.messaging.retrieve",
        "phoneNumbers.messaging.update",
        "phoneNumbers.messaging.list",
        "mobilePhoneNumbers.messaging.retrieve",
        "mobilePhoneNumbers.messaging.list",
        "messagingNumbersBulkUpdates.create",
        "messagingNumbersBulkUpdates.retrieve",
    ):
        assert any(line.startswith(f"OK {op} ") for line in lines), (op, done.stdout)
