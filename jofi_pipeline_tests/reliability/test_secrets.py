"""A distinctive key through a faulty run, a failing run and Dagster's own storage: its bytes
appear nowhere the runs wrote (stdout/stderr, DAGSTER_HOME, DuckDB, Parquet, work files)."""

from __future__ import annotations

from jofi_pipeline.simulator.process import SimulatorProcess
from jofi_pipeline.harness.crash import SYNC
from jofi_pipeline_tests.reliability.helpers import data_dir_files

CANARY = "sk_live_SECRETcanary7f3a9c1e5b"


def test_the_api_key_never_leaves_the_environment(zygote, tmp_path):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    data_dir = tmp_path / "data"
    with SimulatorProcess(test_takers=10, seed=5, live_key=CANARY) as sim:
        env = {**sim.env(), "JOFI_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home)}
        outputs = []
        sim.set_faults(error_rate=0.2, malformed_rate=0.1, reset_rate=0.05, seed=9)
        outputs.append(zygote.run(SYNC, env))
        sim.set_faults(revoke_after_requests=20)  # a failing run: error messages, Failure events
        outputs.append(zygote.run(SYNC, env))
        sim.clear_faults()
        sim.set_faults(force_mode="other", routes=["GET /teams"])
        outputs.append(zygote.run(SYNC, env))
    assert [code for code, _, _ in outputs] == [0, 1, 1], outputs
    assert "JOFI_LIVE_API_KEY" in outputs[1][2], "the failure names the env var to check"
    runs = list((dagster_home / "history" / "runs").glob("*.db")) if (dagster_home / "history").exists() else []
    assert (dagster_home / "history").exists() and runs, "the Dagster run storage must exist to be searched"
    needles = [CANARY.encode(), CANARY.removeprefix("sk_live_").encode()]
    searched = 0
    for path in data_dir_files(tmp_path):
        if path.name.startswith("cli-"):
            continue
        data = path.read_bytes()
        searched += 1
        for needle in needles:
            assert needle not in data, f"the key leaked into {path}"
    for code, out, err in outputs:
        for needle in needles:
            assert needle.decode() not in out + err
    assert searched >= 10
