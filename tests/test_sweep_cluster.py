"""Sweeps on an existing Dask cluster, the way ``examples/slurm/table1.sbatch`` runs them on SLURM:
a ``dask scheduler --scheduler-file`` and ``dask worker`` processes started from the command line,
the sweep run through the CLI with ``--scheduler-file``; the batch script itself is checked (syntax,
``#SBATCH`` lines, its sweep file) and run end to end with a fake ``srun`` on a toy sweep.
Every process started here is stopped (its whole process group) whatever happens."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgnlib import sweep

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "tests" / "data" / "sweep_toy.ipynb"
SBATCH = ROOT / "examples" / "slurm" / "table1.sbatch"
LOOPBACK = "127.0.0.1"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the SLURM script targets Linux")


def toy_final(x: float, seed: int, epochs: int = 3) -> float:
    """The toy notebook's last accuracy value (see tests/test_sweep.py)."""
    return x * epochs / epochs + 0.01 * seed


def _dask_cli() -> list[str]:
    """The `dask` command of this interpreter (as the batch script runs it: `$PYTHON -m dask`)."""
    pytest.importorskip("distributed")
    return [sys.executable, "-m", "dask"]


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to ``proc``'s process group (it was started in a new session), SIGKILL after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; children (nanny -> worker process) may still be in the group
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                os.killpg(proc.pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            break


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} not written)"


# ------------------------------------------------------------- a cluster from the dask CLI

@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler --scheduler-file F`` and two ``dask worker --scheduler-file F --nthreads 1``
    processes on the loopback interface; yields F. Stops them (workers first) in any case."""
    dask = _dask_cli()
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        with open(logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([*dask, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=tmp_path, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        scheduler = start("scheduler", ["scheduler", "--scheduler-file", str(sched_file), "--host", LOOPBACK,
                                        "--port", "0", "--no-dashboard"])
        deadline = time.monotonic() + 60
        while not (sched_file.is_file() and sched_file.stat().st_size):
            assert scheduler.poll() is None, f"dask scheduler exited:\n{_tail(logs / 'scheduler.log')}"
            assert time.monotonic() < deadline, f"no scheduler file:\n{_tail(logs / 'scheduler.log')}"
            time.sleep(0.1)
        for i in range(2):
            start(f"worker-{i}", ["worker", "--scheduler-file", str(sched_file), "--nworkers", "1", "--nthreads", "1",
                                  "--host", LOOPBACK, "--memory-limit", "0", "--death-timeout", "60",
                                  "--no-dashboard", "--name", f"worker-{i}"])
        with Client(scheduler_file=str(sched_file), timeout="30s") as c:
            try:
                c.wait_for_workers(2, timeout=90)
            except TimeoutError:
                pytest.fail("workers did not connect:\n" + "\n".join(_tail(p) for p in sorted(logs.iterdir())))
        yield sched_file
    finally:
        for proc in procs[1:]:  # the workers, while the scheduler still runs (they close at once then)
            _stop_group(proc, 15)
        for proc in procs[:1]:
            _stop_group(proc, 10)


def test_cli_sweep_on_a_scheduler_file_cluster(dask_cluster, tmp_path):
    from distributed import Client

    with Client(scheduler_file=str(dask_cluster), timeout="30s") as c:
        worker_pids = set(c.run(os.getpid).values())
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dgnlib.sweep"]
    run = [*cmd, "run", "--notebook", str(TOY), "-p", "x=1.0,2.0", "-p", "seed=0,1", "-f", "epochs=3",
           "-o", str(runs), "--scheduler-file", str(dask_cluster), "--no-progress"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "4 run(s)" in first.stdout and "4 finished" in first.stdout
    names = ["x=1.0__seed=0", "x=1.0__seed=1", "x=2.0__seed=0", "x=2.0__seed=1"]
    for name in names:
        st = json.loads((runs / name / "status.json").read_text())
        assert st["status"] == "finished", st
        assert st["pid"] in worker_pids  # executed by the CLI-started workers, not by a LocalCluster

    again = subprocess.run(run, capture_output=True, text=True, timeout=120)  # a resubmitted job
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 skipped" in again.stdout and "0 failed" in again.stdout

    agg = subprocess.run([*cmd, "aggregate", str(runs), "--metric", "acc", "--rows", "x", "--cols", "epochs",
                          "--no-plot"], capture_output=True, text=True, timeout=60)
    assert agg.returncode == 0, agg.stdout + agg.stderr
    for x in (1.0, 2.0):
        vals = [toy_final(x, s) for s in (0, 1)]
        assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in agg.stdout
    assert (runs / "aggregate" / "table_acc.csv").is_file()


# ------------------------------------------------------------------------ the batch script

# sbatch options the script may use (a typo would make sbatch refuse the job)
SBATCH_OPTIONS = {
    "account", "array", "constraint", "cpus-per-gpu", "cpus-per-task", "error", "exclusive", "gpu-bind",
    "gpus", "gpus-per-node", "gpus-per-task", "gres", "job-name", "mail-type", "mail-user", "mem",
    "mem-per-cpu", "mem-per-gpu", "nodes", "ntasks", "ntasks-per-node", "output", "partition", "qos",
    "requeue", "signal", "time", "open-mode", "reservation", "chdir",
}
SBATCH_LINE = re.compile(r"^#SBATCH --(?P<name>[a-z][a-z-]*)(?:=(?P<value>\S+))?$")


def _script_lines() -> list[str]:
    return SBATCH.read_text(encoding="utf-8").splitlines()


def test_sbatch_script_syntax_and_sbatch_options():
    assert SBATCH.is_file()
    lines = _script_lines()
    assert lines[0].startswith("#!") and "bash" in lines[0]
    check = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr

    # sbatch reads #SBATCH lines only up to the first command: all of them must come before it
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#"))
    options = {}
    for i, line in enumerate(lines):
        if not line.startswith("#SBATCH"):
            continue
        assert i < first_command, f"line {i + 1}: #SBATCH after the first command is ignored by sbatch: {line!r}"
        m = SBATCH_LINE.match(line.rstrip())
        assert m, f"line {i + 1}: malformed #SBATCH line {line!r} (expected '#SBATCH --name[=value]')"
        assert m["name"] in SBATCH_OPTIONS, f"line {i + 1}: unknown sbatch option --{m['name']}"
        assert m["name"] not in options, f"line {i + 1}: --{m['name']} given twice"
        options[m["name"]] = m["value"]
    assert not [ln for ln in lines if re.match(r"^#\s+SBATCH|^#SBATCH\S", ln)], "a mistyped #SBATCH prefix"
    for name in ("ntasks", "gpus-per-task", "cpus-per-task", "time"):
        assert name in options, f"missing #SBATCH --{name}"
    assert int(options["ntasks"]) >= 1 and int(options["gpus-per-task"]) == 1 and int(options["cpus-per-task"]) >= 1
    assert re.fullmatch(r"(\d+-)?\d{1,2}:\d{2}:\d{2}", options["time"]), options["time"]
    if "mem-per-cpu" in options:
        assert re.fullmatch(r"\d+[KMGT]?", options["mem-per-cpu"]), options["mem-per-cpu"]


def _default_of(variable: str, text: str) -> str:
    m = re.search(rf"^{variable}=\$\{{{variable}:-([^}}]+)\}}", text, re.M)
    assert m, f"no default for ${variable} in {SBATCH}"
    return m.group(1)


def test_sbatch_script_runs_the_table1_sweep_on_its_scheduler_file(monkeypatch):
    monkeypatch.chdir(ROOT)  # the script runs in the directory it was submitted from: the repository root
    text = SBATCH.read_text(encoding="utf-8")
    runs = [shlex.split(line) for line in text.splitlines()
            if re.search(r"-m dgnlib\.sweep run\b", line) and not line.lstrip().startswith("#")]
    assert len(runs) == 1, runs
    words = runs[0]
    spec = words[words.index("run") + 1]
    if spec.startswith("$"):  # "$SWEEP_SPEC": its default
        spec = _default_of(spec.strip("${}"), text)
    loaded = sweep.load_spec(ROOT / spec)  # exists (relative to the repository root) and is valid
    sweep.check_parameters(loaded)
    assert spec == "examples/sweeps/table1.yaml", spec
    assert len(sweep.expand_grid(loaded.grid, loaded.fixed)) == 12
    assert "--scheduler-file" in words and "-o" in words
    assert re.search(r"-m dgnlib\.sweep aggregate \"\$RUN_DIR\"", text)
    assert _default_of("RUN_DIR", text) == "runs/table1"
    assert re.search(r"-m dask scheduler --scheduler-file \"\$SCHEDULER_FILE\"", text)
    assert re.search(r"-m dask worker --scheduler-file \"\$SCHEDULER_FILE\" --nworkers 1 --nthreads 1", text)
    assert re.search(r"^trap cleanup EXIT$", text, re.M)


FAKE_SRUN = r"""#!/usr/bin/env bash
# fake srun: start the command once per task, in the background, as srun does in an allocation
n=${SLURM_NTASKS:-1} out=
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in
        --ntasks=*) n=${1#*=} ;;
        --output=*) out=${1#*=} ;;
        --*=*) ;;
        *) echo "fake srun: unsupported option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ -n ${FAKE_SRUN_FAIL:-} ]] && { echo "fake srun: failing on purpose" >&2; exit 1; }
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait; exit 143' TERM INT
for ((i = 0; i < n; i++)); do
    f=${out//%t/$i}; f=${f//%j/${SLURM_JOB_ID:-0}}
    SLURM_PROCID=$i CUDA_VISIBLE_DEVICES=$i "$@" >"${f:-/dev/stderr}" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
"""


def _run_sbatch(tmp_path: Path, timeout: float, **env) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the batch script locally (2 tasks, fake srun, toy sweep); returns the result and RUN_DIR.
    The script and everything it starts run in one new process group, checked empty afterwards."""
    _dask_cli()
    if not Path("/sys/class/net/lo").exists():
        pytest.skip("no loopback interface named lo")
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "srun").write_text(FAKE_SRUN)
    (bindir / "srun").chmod(0o755)
    spec = tmp_path / "toy.yaml"
    spec.write_text(f"notebook: {TOY}\ngrid:\n  x: [1.0, 2.0]\n  seed: [0, 1]\nfixed:\n  epochs: 3\n")
    run_dir = tmp_path / "runs"
    full_env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                "SLURM_NTASKS": "2", "SLURM_JOB_ID": "4242", "SLURM_SUBMIT_DIR": str(ROOT),
                "SWEEP_SPEC": str(spec), "RUN_DIR": str(run_dir), "PREPARE_DATA": "0", "PYTHON": sys.executable,
                "DASK_INTERFACE": "lo", "STARTUP_TIMEOUT": "90", "DGNLIB_CACHE_DIR": str(tmp_path / "cache"),
                "AGGREGATE_ARGS": "--metric acc --rows x --cols epochs --no-plot", **env}
    for k in ("SLURM_CPUS_PER_TASK", "SLURM_GPUS_PER_TASK", "SLURM_MEM_PER_CPU"):
        full_env.pop(k, None)
    proc = subprocess.Popen(["bash", str(SBATCH)], cwd=tmp_path, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        leftover = True
        deadline = time.monotonic() + 10
        while leftover and time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
                time.sleep(0.2)
            except ProcessLookupError:
                leftover = False
        assert not leftover, f"processes of the batch script still running after it exited:\n{out}"
    finally:
        _stop_group(proc, 10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, None), run_dir


def test_sbatch_script_end_to_end_with_fake_srun(tmp_path):
    res, run_dir = _run_sbatch(tmp_path, timeout=150)
    out = res.stdout
    assert res.returncode == 0, out + "\n".join(_tail(p) for p in sorted((run_dir / "dask-logs").glob("*.log")))
    assert "2 worker(s) connected" in out and "4 run(s)" in out and "4 finished" in out
    for x in (1.0, 2.0):
        vals = [toy_final(x, s) for s in (0, 1)]
        assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in out
    assert "cluster stopped (exit status 0)" in out
    assert not (run_dir / "scheduler.json").exists()  # removed on exit
    logs = run_dir / "dask-logs"
    assert (logs / "scheduler-4242.log").is_file()
    for i in (0, 1):  # one worker per task, each with "its" GPU
        assert f"task {i} on " in (logs / f"worker-4242-{i}.log").read_text()
        assert f"CUDA_VISIBLE_DEVICES={i}" in (logs / f"worker-4242-{i}.log").read_text()
    states = [json.loads(p.read_text())["status"] for p in run_dir.glob("*/status.json")]
    assert states == ["finished"] * 4
    assert (run_dir / "aggregate" / "table_acc.csv").is_file()


def test_sbatch_script_fails_fast_when_the_workers_do_not_start(tmp_path):
    res, run_dir = _run_sbatch(tmp_path, timeout=90, FAKE_SRUN_FAIL="1")
    assert res.returncode != 0
    assert "the Dask worker step (srun) exited with 0 of 2 worker(s) connected" in res.stdout, res.stdout
    assert "the Dask cluster did not start" in res.stdout and "sweep started" not in res.stdout
    assert not (run_dir / "scheduler.json").exists() and not (run_dir / "sweep.json").exists()


def test_missing_scheduler_file_fails_at_once(tmp_path):
    """distributed would wait for a scheduler file forever: the CLI exits 2 with one line."""
    out = subprocess.run([sys.executable, "-m", "dgnlib.sweep", "run", "--notebook", str(TOY), "-p", "x=1",
                          "-o", str(tmp_path / "runs"), "--scheduler-file", str(tmp_path / "none.json")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "scheduler file" in out.stderr and "does not exist" in out.stderr
    assert not (tmp_path / "runs").exists()
