"""The Dagster instance `ui` and `materialize` share: its settings file and its storage."""

import shutil
import subprocess
import sys

import dagster as dg
import yaml

from platform_tools.dagster_home import DAGSTER_FOLDER, dagster_home
from platform_tools.dagster_storage import EngineReusingSqliteEventLogStorage

CHECKS = 30


@dg.asset(check_specs=[dg.AssetCheckSpec(f"check_{i}", asset="readings") for i in range(CHECKS)])
def readings():
    """An asset with many checks, as the dbt step has."""
    yield dg.Output(1)
    for i in range(CHECKS):
        yield dg.AssetCheckResult(check_name=f"check_{i}", passed=i % 2 == 0)


def test_runs_stored_by_one_process_read_the_same_in_another(tmp_path, monkeypatch):
    """GIVEN the instance of a fresh state dir WHEN a run with 30 checks is stored through it
    THEN its event log is the engine-reusing one, the checks' outcomes read back, and another
    process (as the UI's webserver and a run's own process are) reads the same run, both
    from the settings file and from the instance reference a run's process is handed."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = dagster_home(tmp_path)
    instance = dg.DagsterInstance.from_config(str(home))
    assert isinstance(instance.event_log_storage, EngineReusingSqliteEventLogStorage)

    result = dg.materialize([readings], instance=instance)

    passed = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert passed == {f"check_{i}": i % 2 == 0 for i in range(CHECKS)}
    stored = len(instance.all_logs(result.run_id))
    from_ref = dg.DagsterInstance.from_ref(instance.get_ref())
    assert isinstance(from_ref.event_log_storage, EngineReusingSqliteEventLogStorage)
    assert len(from_ref.all_logs(result.run_id)) == stored
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dagster as dg; i = dg.DagsterInstance.from_config(sys.argv[1]);"
            " print(len(i.all_logs(sys.argv[2])))",
            str(home),
            result.run_id,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr
    assert int(other.stdout.strip().splitlines()[-1]) == stored


def test_the_settings_file_follows_the_folder_and_keeps_a_users_edits(tmp_path, monkeypatch):
    """GIVEN a settings file written for a folder since moved, one an earlier version wrote, and
    one the user edited WHEN the instance's folder is asked for THEN the first two are
    rewritten for where they are now and the user's is left as it is."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    first = dagster_home(tmp_path / "before")
    moved = tmp_path / "after"
    shutil.move(tmp_path / "before", moved)
    earlier = tmp_path / "earlier" / DAGSTER_FOLDER
    earlier.mkdir(parents=True)
    (earlier / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    edited = tmp_path / "edited" / DAGSTER_FOLDER
    edited.mkdir(parents=True)
    (edited / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")

    assert str(first) in (moved / DAGSTER_FOLDER / "dagster.yaml").read_text()
    for state_dir in (moved, tmp_path / "earlier"):
        home = dagster_home(state_dir)
        storage = yaml.safe_load((home / "dagster.yaml").read_text())["storage"]["custom"]
        assert storage["config"]["base_dir"] == str(home)
        assert storage["module"] == "platform_tools.dagster_storage"
    dagster_home(tmp_path / "edited")
    assert (edited / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"
