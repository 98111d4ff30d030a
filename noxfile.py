"""Every supported Python and every supported Airflow minor, each in a fresh virtualenv.

``make versions`` runs ``nox -t versions``: the suite on Python 3.10, 3.11, 3.12 and 3.13
without the wall-clock end-to-end tests (marked ``slow``; ``make test`` runs those, on the
project's own interpreter). ``make airflow-versions`` runs ``nox -t airflow``: the
provider tests (``tests/airflow/``: the fast ones and the real stack killing a deferred
task, without the four-run stack of ``test_stack.py``) on each Airflow minor from the
floor of the ``airflow`` extra to the newest. The Makefile puts the pyenv interpreters on
``PATH``; an interpreter that is missing fails its session, it is never skipped.
"""

from __future__ import annotations

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False
# uv makes the virtualenvs and installs into them (as the Makefile does): seconds, not a
# minute each; virtualenv where uv is missing.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = []  # nothing by default: run by tag (see the Makefile)

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

AIRFLOW_PYTHON = "3.11"
# The newest release of each supported minor; the floor is the `airflow` extra's in
# pyproject.toml, and the table in docs/guides/airflow.md says what each one gets.
AIRFLOW_VERSIONS = ["3.1.8", "3.2.2", "3.3.2"]
# What Airflow's own constraints file for a release pins and a plain install would take
# too new. 3.1 sets an attribute on cryptography's MultiFernet, a Rust type from
# cryptography 51 on, so every deferral fails ("Database error occurred"). 3.2 leaves
# fastapi open, and fastapi 0.137 with the cadwyn it brings cannot build the execution
# API's models (3.3 caps fastapi below 0.137 itself).
AIRFLOW_PINS = {"3.1.8": ["cryptography<51"], "3.2.2": ["fastapi<0.137"]}

WORKERS = "2"


@nox.session(python=PYTHONS, tags=["versions"])
def tests(session: nox.Session) -> None:
    """The suite without the wall-clock end-to-end tests, on one interpreter."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-n", WORKERS, "-m", "not slow", *session.posargs)


@nox.session(python=AIRFLOW_PYTHON, tags=["airflow"])
@nox.parametrize("airflow", AIRFLOW_VERSIONS)
def airflow(session: nox.Session, airflow: str) -> None:
    """The provider's tests against one Airflow release."""
    session.install("-e", ".[test]", f"apache-airflow=={airflow}", *AIRFLOW_PINS.get(airflow, []))
    session.run(
        "python",
        "-m",
        "pytest",
        "-n",
        WORKERS,
        "tests/airflow",
        "--ignore=tests/airflow/test_stack.py",  # four runs on a real stack: `make test` only
        *session.posargs,
    )
