# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print pytest's totals from its JUnit XML report as one closing line: `pytest: N passed, N failed, N skipped`
(or LABEL instead of `pytest`, when a second argument gives one).

`make test` ends with the linters, so pytest's own summary line is far up the log; this repeats it last.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET  # noqa: S405 (our own pytest's report)


def main() -> None:
    root = ET.parse(sys.argv[1]).getroot()  # noqa: S314 (our own pytest's report)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals = {
        key: sum(int(suite.get(key, 0)) for suite in suites) for key in ("tests", "failures", "errors", "skipped")
    }
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    label = sys.argv[2] if len(sys.argv) > 2 else "pytest"
    print("%s: %d passed, %d failed, %d skipped" % (label, passed, failed, totals["skipped"]))


if __name__ == "__main__":
    main()
