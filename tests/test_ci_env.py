"""CI runs as a user's machine would (``.ci/run`` and ``.ci/user-env``).

Our machines set ``PYTHONDONTWRITEBYTECODE=1``; with it CI would never see the
``__pycache__/`` folders a user's ``make test`` writes into the stages' dependency folders.
``.ci/user-env`` drops every ``PYTHON*`` setting and the thread and instruction-set overrides
and keeps the rest; ``.ci/run`` sources it before anything runs, runs the tests (which then
write bytecode) before the gate (whose ``dvc status`` must then be clean), and refuses to go
on when the tests wrote no bytecode.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = (REPO / ".ci" / "run").read_text(encoding="utf-8")

OURS = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONPYCACHEPREFIX": "/tmp/elsewhere",
    "PYTHONOPTIMIZE": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NVPL_BLAS_DEBUG_CPU_TYPE": "1",
}
KEPT = {"PIP_FIND_LINKS": "/opt/wheels", "SSL_CERT_FILE": "/etc/ssl/certs/ca.crt", "CI": "true", "HOME": "/root"}


def test_user_env_drops_our_settings_and_keeps_the_rest():
    env = {**OURS, **KEPT, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail; source .ci/user-env; env -0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    after = dict(item.split("=", 1) for item in done.stdout.split("\0") if item)
    assert not [name for name in after if name.startswith("PYTHON") or name in OURS]
    assert {name: after.get(name) for name in KEPT} == KEPT and after["PATH"] == env["PATH"]


def test_run_sources_it_first_and_tests_with_bytecode_before_the_gate():
    lines = [line.strip() for line in RUN.splitlines()]
    first_command = next(line for line in lines if line and not line.startswith(("#", "set ", "cd ", "echo ")))
    assert first_command == "source .ci/user-env"
    order = [lines.index(step) for step in ("source .ci/user-env", "make test", 'PATH="$PWD/.venv/bin:$PATH" .ci/gate')]
    assert order == sorted(order)
    check = RUN.index("find pipeline -name '*.pyc'")
    assert RUN.index("make test") < check < RUN.index(".ci/gate\n")
    assert "PYTHONDONTWRITEBYTECODE=" not in RUN and "GATE_REPRODUCE" not in RUN  # nothing turns either back off
