"""Sweeps on an existing Dask cluster, the way ``examples/slurm/table1.sbatch`` runs them on SLURM:
a ``dask scheduler --scheduler-file`` and ``dask worker`` processes started from the command line,
TLS-only with the certificates of ``examples/slurm/make_dask_certs.sh``, the sweep run through the CLI
with ``--scheduler-file`` and ``--tls-*``; clients without the certificates are refused. The batch
script itself is checked (syntax, ``#SBATCH`` lines, its sweep file) and run end to end with a fake
``srun`` on a toy sweep. Every process started here is stopped (its whole process group) whatever
happens."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import stat
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from toy_sweep import ROOT, TOY, toy_final

from dgnlib import sweep

SBATCH = ROOT / "examples" / "slurm" / "table1.sbatch"
MAKE_CERTS = ROOT / "examples" / "slurm" / "make_dask_certs.sh"
LOOPBACK = "127.0.0.1"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the SLURM script targets Linux")


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


def _make_certs(directory: Path, name: str = "test") -> SimpleNamespace:
    """``make_dask_certs.sh directory name``; the three files' paths (ca, cert, key) and the folder."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (make_dask_certs.sh needs it)")
    out = subprocess.run(["bash", str(MAKE_CERTS), str(directory), name], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return SimpleNamespace(dir=directory, ca=directory / "ca.pem", cert=directory / "cert.pem",
                           key=directory / "key.pem")


def _tls_args(certs: SimpleNamespace) -> list[str]:
    return ["--tls-ca-file", str(certs.ca), "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)]


def _refused(address: str, security=None) -> str | None:
    """None if Dask's ``connect`` (TCP/TLS connection and Dask's handshake, as every client, worker or
    scheduler connects) to ``address`` with ``security`` succeeds; else the error."""
    from distributed.comm import connect
    from distributed.security import Security

    async def attempt():
        comm = await connect(address, timeout="5s", **(security or Security()).get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(attempt())
        return None
    except (OSError, TypeError) as e:  # TypeError: a tls:// address without certificates (client side)
        return f"{type(e).__name__}: {e}"


def _raw_tls_reply(address: str, ca: Path, cert: Path | None = None, key: Path | None = None) -> bytes:
    """Open a TLS connection to ``address`` trusting ``ca`` (with a client certificate if given) and
    return the first bytes the server sends (Dask's handshake), or b"" when it aborts the connection."""
    host, port = address.split("://", 1)[1].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw, ctx.wrap_socket(raw) as conn:
            return conn.recv(1)
    except (ssl.SSLError, OSError):
        return b""


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} not written)"


# ------------------------------------------------------------- a cluster from the dask CLI

@pytest.fixture(scope="class")
def dask_cluster(tmp_path_factory):
    """``dask scheduler --scheduler-file F --protocol tls`` and two ``dask worker --scheduler-file F
    --nthreads 1`` processes on the loopback interface, all with the certificates of
    make_dask_certs.sh (``--tls-ca-file/--tls-cert/--tls-key``, as table1.sbatch starts them); yields
    ``(file=F, certs=..., security=a client's Security)``. Stops them (workers first) in any case.
    Shared by the tests of TestTLSCluster (none changes it), to start it once."""
    dask = _dask_cli()
    from distributed import Client

    tmp_path = tmp_path_factory.mktemp("dask_cluster")

    certs = _make_certs(tmp_path / "tls", "dgnlib-test-cluster")
    security = sweep.tls_security(certs.ca, certs.cert, certs.key)
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
                                        "--protocol", "tls", *_tls_args(certs), "--port", "0", "--no-dashboard"])
        deadline = time.monotonic() + 60
        while not (sched_file.is_file() and sched_file.stat().st_size):
            assert scheduler.poll() is None, f"dask scheduler exited:\n{_tail(logs / 'scheduler.log')}"
            assert time.monotonic() < deadline, f"no scheduler file:\n{_tail(logs / 'scheduler.log')}"
            time.sleep(0.1)
        for i in range(2):
            start(f"worker-{i}", ["worker", "--scheduler-file", str(sched_file), "--nworkers", "1", "--nthreads", "1",
                                  "--host", LOOPBACK, "--memory-limit", "0", "--death-timeout", "60",
                                  *_tls_args(certs), "--no-dashboard", "--name", f"worker-{i}"])
        with Client(scheduler_file=str(sched_file), timeout="30s", security=security) as c:
            try:
                c.wait_for_workers(2, timeout=90)
            except TimeoutError:
                pytest.fail("workers did not connect:\n" + "\n".join(_tail(p) for p in sorted(logs.iterdir())))
        yield SimpleNamespace(file=sched_file, certs=certs, security=security)
    finally:
        for proc in procs[1:]:  # the workers, while the scheduler still runs (they close at once then)
            _stop_group(proc, 15)
        for proc in procs[:1]:
            _stop_group(proc, 10)


class TestTLSCluster:
    """Tests on one ``dask_cluster`` (class-scoped: started once, stopped before the batch-script
    tests run)."""

    def test_cli_sweep_on_a_scheduler_file_cluster(self, dask_cluster, tmp_path, capsys):
        """The sweep through ``python -m dgnlib.sweep`` in a process of its own; the refused client
        without certificates, the resubmitted job and the aggregation through the same entry point
        in this process."""
        from distributed import Client

        with Client(scheduler_file=str(dask_cluster.file), timeout="30s", security=dask_cluster.security) as c:
            worker_pids = set(c.run(os.getpid).values())
        runs = tmp_path / "runs"
        run = ["run", "--notebook", str(TOY), "-p", "x=1.0,2.0", "-p", "seed=0,1", "-f", "epochs=3",
               "-o", str(runs), "--scheduler-file", str(dask_cluster.file), "--no-progress"]
        assert sweep.main(run) == 2  # no certificates
        assert "uses TLS: give its certificates (--tls-ca-file, --tls-cert, --tls-key" in capsys.readouterr().err
        assert not list(runs.glob("*/status.json"))  # nothing ran
        run += _tls_args(dask_cluster.certs)
        first = subprocess.run([sys.executable, "-m", "dgnlib.sweep", *run], capture_output=True, text=True,
                               timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "4 run(s)" in first.stdout and "4 finished" in first.stdout
        names = ["x=1.0__seed=0", "x=1.0__seed=1", "x=2.0__seed=0", "x=2.0__seed=1"]
        for name in names:
            st = json.loads((runs / name / "status.json").read_text())
            assert st["status"] == "finished", st
            assert st["pid"] in worker_pids  # executed by the CLI-started workers, not by a LocalCluster

        assert sweep.main(run) == 0  # a resubmitted job
        again = capsys.readouterr().out
        assert "4 skipped" in again and "0 failed" in again

        assert sweep.main(["aggregate", str(runs), "--metric", "acc", "--rows", "x", "--cols", "epochs",
                           "--no-plot"]) == 0
        agg = capsys.readouterr().out
        for x in (1.0, 2.0):
            vals = [toy_final(x, s) for s in (0, 1)]
            assert f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}" in agg
        assert (runs / "aggregate" / "table_acc.csv").is_file()

    def test_tls_cluster_refuses_clients_without_its_certificates(self, dask_cluster, tmp_path):
        """Scheduler, workers and nannies listen on tls:// only; a client needs this cluster's certificate:
        plain TCP, TLS without a client certificate, and another cluster's (job's) certificates all fail."""
        from distributed import Client

        with Client(scheduler_file=str(dask_cluster.file), timeout="30s", security=dask_cluster.security) as c:
            info = c.scheduler_info()
            assert c.submit(int, "41").result() + 1 == 42  # the right certificates work
        addresses = [info["address"], *info["workers"], *(w["nanny"] for w in info["workers"].values())]
        assert len(addresses) == 5 and all(a.startswith("tls://127.0.0.1:") for a in addresses), addresses
        other = _make_certs(tmp_path / "other-job-tls", "another-job")
        impostors = {
            "other job's certificates": sweep.tls_security(other.ca, other.cert, other.key),
            "this CA, another certificate": sweep.tls_security(dask_cluster.certs.ca, other.cert, other.key),
        }
        for address in addresses:
            assert _refused(address, dask_cluster.security) is None, address  # the job's own certificates work
            assert _refused("tcp://" + address.split("://", 1)[1]) is not None, f"plain TCP accepted by {address}"
            assert "TLS" in (_refused(address) or "accepted"), address  # no certificates at all
            for what, security in impostors.items():
                assert _refused(address, security) is not None, f"{address} accepted a client with {what}"
            # TLS that trusts the cluster's CA but presents no certificate: the server aborts; with the
            # certificate, the same probe gets Dask's first bytes (so the probe can tell the difference)
            assert _raw_tls_reply(address, dask_cluster.certs.ca) == b"", address
            assert _raw_tls_reply(address, dask_cluster.certs.ca, dask_cluster.certs.cert, dask_cluster.certs.key)


def test_make_dask_certs_private_folder(tmp_path):
    certs = _make_certs(tmp_path / "tls", "job-1")
    assert stat.S_IMODE(certs.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(certs.key.stat().st_mode) == 0o600
    assert sorted(p.name for p in certs.dir.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]  # no CA key left
    text = subprocess.run(["openssl", "x509", "-in", str(certs.cert), "-noout", "-subject", "-issuer"],
                          capture_output=True, text=True, timeout=30).stdout
    assert "CN = job-1" in text and "CN = job-1 CA" in text
    # an existing folder (made by someone else, or stale) is never reused
    again = subprocess.run(["bash", str(MAKE_CERTS), str(certs.dir)], capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "must not exist yet" in again.stderr
    usage = subprocess.run(["bash", str(MAKE_CERTS)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_cli_tls_options_are_checked(tmp_path, capsys):
    cmd = ["run", "--notebook", str(TOY), "-p", "x=1", "-o", str(tmp_path / "r")]
    for args, message in (
            (["--scheduler-file", "s.json", "--tls-ca-file", "ca.pem"], "--tls-cert, --tls-key missing"),
            (["--tls-ca-file", "a", "--tls-cert", "b", "--tls-key", "c"], "give --scheduler or --scheduler-file too")):
        with pytest.raises(SystemExit) as info:  # a usage error (argparse)
            sweep.main([*cmd, *args])
        assert info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match=r"TLS cert '.*nope.pem' does not exist"):
        sweep.tls_security(TOY, tmp_path / "nope.pem", TOY)


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
    assert len(sweep.expand_grid(loaded.grid, loaded.fixed)) == 24  # 12 configurations x 2 units of 5 seeds
    assert "--scheduler-file" in words and "-o" in words
    assert re.search(r"-m dgnlib\.sweep aggregate \"\$RUN_DIR\"", text)
    assert _default_of("RUN_DIR", text) == "runs/table1"
    assert re.search(r"-m dask scheduler --scheduler-file \"\$SCHEDULER_FILE\" --protocol tls --port 0 "
                     r"\"\$\{tls\[@\]\}\"", text)
    assert re.search(r"-m dask worker --scheduler-file \"\$SCHEDULER_FILE\" --nworkers 1 --nthreads 1 "
                     r"\"\$\{tls\[@\]\}\"", text)
    assert words[words.index("--scheduler-file") + 2] == "${tls[@]}"  # the sweep's client uses them too
    assert re.search(r'^tls=\(--tls-ca-file "\$TLS_DIR/ca.pem" --tls-cert "\$TLS_DIR/cert.pem" '
                     r'--tls-key "\$TLS_DIR/key.pem"\)$', text, re.M)
    assert re.search(r'^bash examples/slurm/make_dask_certs.sh "\$TLS_DIR"', text, re.M)
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


def _probe_while_running(sched_file: Path, other_certs: SimpleNamespace, done: threading.Event, found: dict):
    """While the batch script runs: once its scheduler file appears, try to connect without the job's
    certificates (plain TCP, another job's certificates); record the address and the outcomes."""
    while not done.is_set():
        try:
            address = json.loads(sched_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
            continue
        found["address"] = address
        found["tcp"] = _refused("tcp://" + address.split("://", 1)[1])
        found["other job"] = _refused(address, sweep.tls_security(other_certs.ca, other_certs.cert, other_certs.key))
        return


def test_sbatch_script_end_to_end_with_fake_srun(tmp_path):
    other = _make_certs(tmp_path / "other-job-tls", "another-job")
    done, found = threading.Event(), {}
    probe = threading.Thread(target=_probe_while_running,
                             args=(tmp_path / "runs" / "scheduler.json", other, done, found), daemon=True)
    probe.start()
    try:
        res, run_dir = _run_sbatch(tmp_path, timeout=150)
    finally:
        done.set()
        probe.join(timeout=30)
    out = res.stdout
    assert res.returncode == 0, out + "\n".join(_tail(p) for p in sorted((run_dir / "dask-logs").glob("*.log")))
    assert "2 worker(s) connected to tls://127.0.0.1:" in out and "4 run(s)" in out and "4 finished" in out
    # the job's cluster refused clients without its certificates, and its private folder is gone
    assert found.get("address", "").startswith("tls://127.0.0.1:"), found
    assert found["tcp"] is not None and found["other job"] is not None, found
    assert not list(run_dir.glob(".dask-tls-*"))
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


def test_missing_scheduler_file_fails_at_once(tmp_path, capsys):
    """distributed would wait for a scheduler file forever: the CLI exits 2 with one line."""
    assert sweep.main(["run", "--notebook", str(TOY), "-p", "x=1", "-o", str(tmp_path / "runs"),
                       "--scheduler-file", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "scheduler file" in err and "does not exist" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
