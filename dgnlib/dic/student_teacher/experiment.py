"""The student-teacher experiment of Fig. 4: the published schedule, its records and its log.

:func:`run_experiment` draws the inputs, the teacher and the students' common initial weights,
runs the burn-in (only potentials and feedback weights evolve) and then per epoch: the teacher
open loop (its rates are the targets), the open-loop evaluation of both students (OL MSE) and
their closed-loop training (CL MSE, least-control objective LCL). Every epoch gives an
:class:`EpochRecord`; :func:`format_epoch` prints it in the layout of the paper's code
("Approx" is the linear-threshold student, "Exact" the exact one).
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ...checks import choice, positive_int
from .model import (ERROR_FORMS, STUDENTS, State, StudentTeacherConfig, as_float32, init_network, init_state,
                    input_window, make_rule, sine_inputs)
from .solve import BatchRunner, stack_trees

__all__ = ["EpochRecord", "ExperimentResult", "format_epoch", "run_experiment"]


class EpochRecord(NamedTuple):
    """Metrics of one training epoch; arrays are (2,) in the order of ``STUDENTS``."""

    epoch: int
    ol_mse: np.ndarray
    cl_mse: np.ndarray
    lcl: np.ndarray
    steps: np.ndarray  # ODE steps of (teacher, OL linear_threshold, OL exact, CL linear_threshold, CL exact)
    seconds: float


class ExperimentResult(NamedTuple):
    """Outcome of :func:`run_experiment`.

    ``history``: dict of arrays (epochs, 2) for "ol_mse", "cl_mse", "lcl" (students in the
    order ``students``); ``epoch_end_minutes`` (epochs,): simulated time at each epoch's end;
    ``inputs_ts``, ``inputs`` (T, n_in): the first burn-in window; ``demo_before`` /
    ``demo_after``: dict(t (2T,), target (2T, n_out), outputs (2, 2T, n_out), control_on
    (start, end) in s) for an open-loop window followed by a controlled one, before and
    after learning (None with ``demo=False``); ``teacher``: the teacher's final state;
    ``final_students``: the students' final states stacked on a leading axis of 2;
    ``timings``: seconds spent in burn-in and training."""

    students: tuple
    history: dict
    epoch_end_minutes: np.ndarray
    inputs_ts: np.ndarray
    inputs: np.ndarray
    demo_before: Optional[dict]
    demo_after: Optional[dict]
    teacher: State
    final_students: State
    timings: dict


_LOG_NAMES = {"linear_threshold": "Approx", "exact": "Exact"}  # the labels of the published log


def format_epoch(record: EpochRecord, students=STUDENTS) -> str:
    """The published printout for one epoch (7 lines, no trailing newline)."""
    lines = [f"Training epoch {record.epoch}"]
    for i, s in enumerate(students):
        name = _LOG_NAMES[s]
        lines.append(f"{name} - MSE Loss (OL):  {str(np.float32(record.ol_mse[i]))}")
        lines.append(f"{name} - MSE Loss (CL):  {str(np.float32(record.cl_mse[i]))}")
        lines.append(f"{name} - LCL:  {str(np.float32(record.lcl[i]))}")
    return "\n".join(lines)


def _np_mse(y, r):
    """Host-side (numpy, float32) version of :func:`~.model.mse_per_time`."""
    return np.mean(np.sum((np.asarray(y) - np.asarray(r)) ** 2, axis=-1), axis=-1)


def run_experiment(epochs: int = 60, seed: int = 2, *, burn_in_epochs: int = 4, error_form: str = "published",
                   window: float = 5.0, dt: float = 1e-3, config: StudentTeacherConfig = StudentTeacherConfig(),
                   n_in: int = 30, n_hidden: int = 20, n_out: int = 2, init_scale: float = 2.0,
                   threefry_partitionable: Optional[bool] = None, max_steps: int = 4096,
                   callback: Optional[Callable[[EpochRecord], None]] = None, progress=None,
                   demo: bool = True) -> ExperimentResult:
    """Run the student-teacher experiment (Fig. 4).

    ``PRNGKey(seed)`` splits into (input, student, teacher) keys; both students (linear
    threshold "Approx" and exact "Exact") start from the same weights. ``burn_in_epochs``
    windows of ``window`` seconds (only u and Q evolve), then ``epochs`` training epochs,
    each an open-loop evaluation (OL MSE) and a closed-loop training solve (CL MSE,
    least-control objective LCL). ``callback(record)`` is called after every epoch;
    ``progress`` (e.g. a tqdm bar) gets ``update(1)`` per burn-in or training epoch.
    ``threefry_partitionable``: if not None, the random draws use that JAX RNG setting
    (``False`` reproduces the 2023 RNG that the published log used).
    ``config``: the task's constants. Returns an :class:`ExperimentResult` (students in the order
    of :data:`~.model.STUDENTS`).
    Raises :class:`~dgnlib.dic.solve_stats.SteadyStateError` if any solve fails, naming the epoch,
    the network and the cause.
    """
    choice("error_form", error_form, ERROR_FORMS)
    epochs = positive_int("epochs", epochs, minimum=0)
    burn_in_epochs = positive_int("burn_in_epochs", burn_in_epochs, minimum=0)
    max_steps = positive_int("max_steps", max_steps)
    if not window > 0 or not dt > 0 or window / dt < 2:
        raise ValueError(f"window and dt must be positive with window/dt >= 2, got window={window}, dt={dt}")

    ctx = (jax.threefry_partitionable(bool(threefry_partitionable)) if threefry_partitionable is not None
           else contextlib.nullcontext())
    with ctx:
        k_in, k_student, k_teacher = jax.random.split(jax.random.PRNGKey(seed), 3)
        sines = sine_inputs(k_in, n_in)
        student_net = init_network(k_student, n_in, n_hidden, n_out, init_scale)
        teacher_net = init_network(k_teacher, n_in, n_hidden, n_out, init_scale)
        sines, student_net, teacher_net = jax.device_get((sines, student_net, teacher_net))

    p = as_float32(config)
    teacher = init_state(teacher_net, p)
    student = init_state(student_net, p)
    windows = {}

    def window_at(t_start):
        if t_start not in windows:
            windows.clear()
            windows[t_start] = input_window(sines, t_start, window, dt)
        return windows[t_start]

    ts0, _ = input_window(sines, 0.0, window, dt)
    run = BatchRunner(ts0, p, jnp.float32(window), error_form, max_steps, n_out)
    exact = make_rule("exact", error_form, p)
    rules = [make_rule(s, error_form, p) for s in STUDENTS]
    timings = {}

    def tick():
        if progress is not None:
            progress.update(1)

    start = 0.0
    first_ts, first_x = (np.asarray(a) for a in input_window(sines, 0.0, window, dt))
    t0 = time.perf_counter()
    for b in range(burn_in_epochs):
        _, x = window_at(start)
        (teacher, _), (student, _) = run([(teacher, x, None, "evaluate", exact),
                                             (student, x, None, "burn_in", exact)], f"burn-in epoch {b}")
        start += window
        tick()
    timings["burn_in"] = time.perf_counter() - t0
    students = [student, student]

    def run_demo(teacher, students, start):
        """Open loop on [start, start + window], then controlled (no plasticity) on the next window."""
        _, x_ol = window_at(start)
        out = run([(teacher, x_ol, None, "evaluate", exact)]
                  + [(s, x_ol, None, "evaluate", r) for s, r in zip(students, rules)], "demonstration, open loop",
                  ["teacher"] + [f"{name} student" for name in STUDENTS])
        teacher2, tr_t = out[0]
        _, x_cl = window_at(start + window)
        (_, tr_t2), = run([(teacher2, x_cl, None, "evaluate", exact)], "demonstration, targets", ["teacher"])[:1]
        ctl = run([(f, x_cl, tr_t2.r, "control", r) for (f, _), r in zip(out[1:], rules)],
                  "demonstration, controlled", [f"{name} student" for name in STUDENTS])
        t = np.concatenate([np.asarray(ts0), np.asarray(ts0) + window]) + start
        target = np.concatenate([np.asarray(tr_t.r), np.asarray(tr_t2.r)])
        outputs = np.stack([np.concatenate([np.asarray(out[1 + i][1].r), np.asarray(ctl[i][1].r)])
                            for i in range(len(STUDENTS))])
        return dict(t=t, target=target, outputs=outputs, control_on=(start + window, start + 2 * window),
                    students=STUDENTS)

    demo_before = run_demo(teacher, students, start) if demo else None

    hist = {k: [] for k in ("ol_mse", "cl_mse", "lcl")}
    ends = []
    t0 = time.perf_counter()
    for ep in range(epochs):
        te = time.perf_counter()
        _, x = window_at(start)
        what = f"training epoch {ep}"
        out = run([(teacher, x, None, "evaluate", exact)]
                  + [(s, x, None, "evaluate", r) for s, r in zip(students, rules)], what + " (open loop)",
                  ["teacher"] + [f"{name} student" for name in STUDENTS])
        steps_a = run.last_steps
        teacher, tr_t = out[0]
        target = tr_t.r
        target_np = np.asarray(target)
        ol = [_np_mse(target_np, out[1 + i][1].r) for i in range(len(STUDENTS))]
        trained = run([(s, x, target, "train", r) for s, r in zip(students, rules)], what + " (closed loop)",
                      [f"{name} student" for name in STUDENTS])
        steps_b = run.last_steps
        students = [trained[i][0] for i in range(len(STUDENTS))]
        cl = [_np_mse(target_np, trained[i][1].r) for i in range(len(STUDENTS))]
        lcl = [np.mean(np.asarray(trained[i][1].lcl)) for i in range(len(STUDENTS))]
        metrics = {k: np.asarray(v, np.float32) for k, v in (("ol_mse", ol), ("cl_mse", cl), ("lcl", lcl))}
        start += window
        ends.append(start / 60.0)
        for k in hist:
            hist[k].append(metrics[k])
        rec = EpochRecord(ep, metrics["ol_mse"], metrics["cl_mse"], metrics["lcl"],
                          np.concatenate([steps_a, steps_b[:len(STUDENTS)]]), time.perf_counter() - te)
        if callback is not None:
            callback(rec)
        tick()
    timings["training"] = time.perf_counter() - t0

    demo_after = run_demo(teacher, students, start) if demo else None
    students = stack_trees(*students)
    history = {k: np.stack(v) if v else np.zeros((0, len(STUDENTS)), np.float32) for k, v in hist.items()}
    return ExperimentResult(STUDENTS, history, np.asarray(ends), first_ts, first_x, demo_before, demo_after,
                            teacher, students, timings)
