"""dgnlib.sweep on Dask with a toy notebook (one 2-worker LocalCluster per module, started once:
starting one per test is slow under load): runs and their files, failure recording, skip/retry on
re-run, aggregation, the command line (``python -m dgnlib.sweep``), and one run executed in this
process (a notebook that writes no records; the kernel's environment)."""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys

import pytest
from toy_sweep import TOY, toy_final

from dgnlib import sweep


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_sweep_runs_and_aggregates(client, tmp_path):
    spec = sweep.make_spec(TOY, {"x": [1.0, 2.5], "seed": [0, 1]}, {"rule": "a"})
    lines = []
    report = sweep.run_sweep(spec, tmp_path, client=client, progress=False, log=lines.append)
    assert report.ok and report.names("finished") == ["x=1.0__seed=0", "x=1.0__seed=1", "x=2.5__seed=0",
                                                      "x=2.5__seed=1"]
    for name in report.names("finished"):
        d = tmp_path / name
        st = json.loads((d / "status.json").read_text())
        assert st["status"] == "finished" and st["result_written"] is True
        assert (d / "output.ipynb").is_file()
        assert json.loads((d / "result.json").read_text())["metrics"]["acc"][-1] == \
            pytest.approx(toy_final(float(name.split("__")[0][2:]), int(name[-1])))
    assert sum("finished" in s for s in lines) == 4 and any("started" in s for s in lines)
    assert not any("no records" in s or "no result.json" in s for s in lines)

    rep = sweep.aggregate_dir(tmp_path, metric="acc", rows="x", cols="rule")
    for x in (1.0, 2.5):
        vals = [toy_final(x, s) for s in (0, 1)]
        cell = rep.table.cells[((x,), ("a",))]
        assert cell.n == 2 and cell.mean == pytest.approx(statistics.mean(vals))
        assert cell.std == pytest.approx(statistics.stdev(vals))
        row = [r for r in _read_csv(rep.csv_path) if float(r["x"]) == x][0]
        assert float(row["a mean"]) == pytest.approx(statistics.mean(vals))
        assert float(row["a std"]) == pytest.approx(statistics.stdev(vals)) and row["a n"] == "2"
        assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in rep.text
    assert len(_read_csv(rep.long_csv_path)) == 2
    assert rep.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rep.counts["no_records"] == [] and "wrote no records" not in rep.text


def test_failed_run_is_recorded_and_retried(client, tmp_path):
    fail_dir = tmp_path / "markers"
    fail_dir.mkdir()
    (fail_dir / "fail-x=2-seed=0").write_text("")
    spec = sweep.make_spec(TOY, {"x": [1, 2]}, {"seed": 0, "fail_dir": str(fail_dir)})
    runs = tmp_path / "runs"
    report = sweep.run_sweep(spec, runs, client=client, progress=False, log=lambda s: None)
    assert report.names("finished") == ["x=1"] and report.names("failed") == ["x=2"] and not report.ok
    st = json.loads((runs / "x=2" / "status.json").read_text())
    assert st["status"] == "failed" and st["error"].startswith("RuntimeError: toy failure for x=2 seed=0")
    assert "RuntimeError" in st["traceback"] and not (runs / "x=2" / "result.json").exists()
    finished_mtime = (runs / "x=1" / "status.json").stat().st_mtime_ns
    assert sweep.aggregate_dir(runs, metric="acc", rows="x", cols=(), plot=False).counts["failed"] == 1

    (fail_dir / "fail-x=2-seed=0").unlink()
    again = sweep.run_sweep(spec, runs, client=client, progress=False, log=lambda s: None)
    assert again.names("skipped") == ["x=1"] and again.names("finished") == ["x=2"] and again.ok
    assert (runs / "x=1" / "status.json").stat().st_mtime_ns == finished_mtime  # not re-run
    assert json.loads((runs / "x=2" / "status.json").read_text())["status"] == "finished"


def test_cli_end_to_end(client, tmp_path, capsys):
    """``python -m dgnlib.sweep run`` in a process of its own on the module's cluster; the dry run,
    the aggregation and a usage error through the same entry point in this process."""
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(f"notebook: {TOY}\ngrid:\n  x: [1.5]\n  seed: [0, 1]\nfixed:\n  epochs: 3\n")
    runs = tmp_path / "runs"
    assert sweep.main(["run", str(spec_file), "-o", str(runs), "--dry-run"]) == 0
    assert "pending   x=1.5__seed=0" in capsys.readouterr().out and not runs.exists()
    run = subprocess.run([sys.executable, "-m", "dgnlib.sweep", "run", str(spec_file), "-f", "epochs=4", "-o",
                          str(runs), "--no-progress", "--scheduler", client.scheduler.address],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 run(s)" in run.stdout and "2 finished" in run.stdout
    out_dir = tmp_path / "agg"
    assert sweep.main(["aggregate", str(runs), "--metric", "acc", "--rows", "x", "--cols", "epochs",
                       "--out-dir", str(out_dir)]) == 0
    vals = [toy_final(1.5, s, 4) for s in (0, 1)]
    assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in capsys.readouterr().out
    assert (out_dir / "curves_acc.png").is_file() and (out_dir / "table_acc.csv").is_file()
    assert sweep.main(["run", "--notebook", str(TOY), "-p", "nope=1", "-o", str(runs)]) == 2
    assert "unknown parameter(s) ['nope']" in capsys.readouterr().err
    assert sweep.main(["run", str(spec_file), "-o", str(runs), "--n-workers", "0"]) == 2
    assert "n_workers must be an int >= 1, got 0" in capsys.readouterr().err


def test_run_without_records_and_the_kernels_environment(tmp_path, monkeypatch, capfd):
    """One run executed in this process, of a notebook that declares no ``result_path`` and prints
    its environment: it finishes without records (a stale result.json of an earlier attempt is
    deleted), the aggregation says so, and the sweep warns before running. Dask's nanny sets
    MALLOC_TRIM_THRESHOLD_ in its workers (1.55x slower vision epochs when a kernel inherits it): the
    runner starts kernels without it and restores the worker's value."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\nprint('trim', os.environ.get('MALLOC_TRIM_THRESHOLD_'), 'home', bool(os.environ.get('HOME')))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "env.ipynb"
    nbformat.write(nb, path)
    runs = tmp_path / "runs"
    (runs / "x=1").mkdir(parents=True)
    (runs / "x=1" / "result.json").write_text('{"metrics": {"acc": [9]}}')  # stale, of an earlier attempt
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    task = sweep.RunTask("x=1", str(runs / "x=1"), str(path), {"x": 1}, pass_result_path=False)
    st = sweep.execute_run(task)
    assert st["status"] == "finished" and st["result_written"] is False and st["params"] == {"x": 1}
    assert not (runs / "x=1" / "result.json").exists()
    assert sweep.notebook_stdout(runs / "x=1" / "output.ipynb") == ["trim None home True"]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
    # the kernel talked IPC (Unix sockets), not TCP: no per-kernel warning on the console
    assert "Kernel is running over TCP without encryption" not in capfd.readouterr().err

    with pytest.raises(ValueError, match=r"no records in finished runs .*1 finished run\(s\) wrote no records"):
        sweep.aggregate_dir(runs)
    lines = []  # every run finished: no cluster is started
    report = sweep.run_sweep(sweep.make_spec(path, {"x": [1]}), runs, progress=False, log=lines.append)
    assert report.names("skipped") == ["x=1"]
    assert "env.ipynb declares no result_path parameter: its runs give no records to aggregate" in lines[0]


def test_ipc_kernels_get_their_own_socket_paths():
    """Kernels started at the same time from one folder (two sweep workers, ci/run_notebooks.py
    --jobs 2) must not share socket files: jupyter_client's default IPC prefix is ``kernel-ipc`` in
    the working directory, and two kernels on it received each other's messages (Invalid Signature)."""
    if os.name != "posix":
        pytest.skip("IPC transport is used on POSIX only")
    from jupyter_core.paths import jupyter_runtime_dir

    from dgnlib.sweep.kernels import IPCKernelManager

    a, b = IPCKernelManager(), IPCKernelManager()
    assert a.transport == b.transport == "ipc"
    assert a.ip != b.ip and os.path.dirname(a.ip) == jupyter_runtime_dir()
    assert len(a.ip) + len("-5") < 100  # a Unix socket path is limited to about 107 bytes
    assert IPCKernelManager(transport="tcp").transport == "tcp"


def test_ctrl_c_stops_the_sweep_in_one_line_and_keeps_it_resumable(tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while two runs execute on a
    2-worker LocalCluster: the command exits 130 with one line saying how to resume, no tracebacks and
    no warnings (the workers ignore SIGINT and log no cancelled task, their kernels no orphaning,
    dgnlib.sweep.worker_setup; the client closes the cluster), and the
    interrupted runs stay 'running', which the next `run` resumes."""
    import signal
    import time

    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 0\nresult_path = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import time\ntime.sleep(120)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "sleep.ipynb")
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dgnlib.sweep", "run", "--notebook", str(tmp_path / "sleep.ipynb"), "-p", "x=1,2",
           "-o", str(runs), "--n-workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.setsid()))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len([s for s in (sweep.read_status(runs / n) for n in ("x=1", "x=2"))
                                              if s and s.get("status") == "running"]) < 2:
            time.sleep(0.5)
        time.sleep(3)  # the kernels are executing the sleep
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "interrupted: finished runs are kept; the same command resumes the others" in out
    assert "Traceback" not in out and len(out.splitlines()) < 12, out
    # no WARNING of the workers (a cancelled task) or of their orphaned kernels, no port warning at start
    assert "WARNING" not in out and "Warning" not in out, out
    lines = out.splitlines()
    assert [line for line in lines if "started " not in line] == [lines[-1]], out  # Ctrl-C prints one line
    assert [sweep.read_status(runs / n)["status"] for n in ("x=1", "x=2")] == ["running", "running"]
