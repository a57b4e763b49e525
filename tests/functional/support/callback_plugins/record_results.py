# Test-only callback: writes every task result as one JSON line, so tests read structured results
# from a real ansible-playbook run instead of scraping its screen output.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: Write task results as JSON lines (ocireg.registry tests only)
description: Writes each task result to the file named by E(OCIREG_TEST_RESULTS).
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, status: str) -> None:
        path = os.environ.get("OCIREG_TEST_RESULTS")
        if not path:
            return
        data = dict(result._result)
        # ansible-core 2.19 keeps the outcome beside the result rather than in it.
        data.setdefault("failed", status == "failed")
        data.setdefault("skipped", status == "skipped")
        entry = {"task": result._task.get_name(), "status": status, "result": data}
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
