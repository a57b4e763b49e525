# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the pip bootstrap script that `ansible-test --venv` downloads.

ansible-test creates its virtual environments without pip, then runs a bootstrap script it
downloads from ci-files.testing.ansible.com (a host this project's machines cannot reach) and
caches as ~/.ansible/test/cache/get_pip_<version>.py. The Makefile installs this file at that
path instead. It is called the same way (`python get_pip_X.py [pip options] pip==X --no-setuptools
--no-wheel`) and does the same job with what is at hand: pip from the interpreter's own ensurepip,
then `pip install` of the requested packages from the package index.
"""

from __future__ import annotations

import subprocess
import sys

# Marks a cached bootstrap script as ours, so that `make` may replace it with a newer copy.
SHIM_MARKER = "ocireg.registry get-pip shim"

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    pip_arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]

    # ensurepip's own chatter is noise in ansible-test's output; show it only when it fails.
    ensurepip = subprocess.run(
        [sys.executable, "-m", "ensurepip", "--default-pip"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if ensurepip.returncode != 0:
        sys.stdout.write(ensurepip.stdout.decode(errors="replace"))
        sys.exit("ensurepip failed with exit status %d" % ensurepip.returncode)

    install = [sys.executable, "-m", "pip", "install", *pip_arguments]
    subprocess.check_call(install)  # noqa: S603 (ansible-test chose the arguments)

    # ensurepip brings setuptools on Python < 3.12; get-pip leaves it out when asked to.
    if "--no-setuptools" in sys.argv[1:]:
        subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"])


if __name__ == "__main__":
    main()
