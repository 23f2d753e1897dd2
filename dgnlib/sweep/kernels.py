"""The Jupyter kernels that run a sweep's notebooks (and the CI's): IPC transport on POSIX.

papermill starts every kernel with a ``jupyter_client`` ``KernelManager``, which by default talks to
the kernel over TCP on localhost ports. On POSIX systems :class:`IPCKernelManager` uses IPC (Unix
domain sockets in the Jupyter runtime directory, readable by the user only) instead: no ports that
other users of a shared machine could connect to, and no ``Kernel is running over TCP without
encryption`` warning printed by every kernel (which broke the sweep's progress bar). Elsewhere
(Windows) it is the plain TCP manager. :data:`dgnlib.sweep.execute.KERNEL_MANAGER` names it as papermill's
``kernel_manager_class`` (an import string, so that importing :mod:`dgnlib.sweep` does not import
``jupyter_client``).
"""
from __future__ import annotations

import os
import uuid
from typing import List, Optional

from jupyter_client.manager import KernelManager

__all__ = ["IPCKernelManager"]


class IPCKernelManager(KernelManager):
    """A ``KernelManager`` whose kernels use the IPC transport on POSIX (TCP elsewhere).

    Each kernel's sockets get their own random path prefix in the Jupyter runtime directory:
    jupyter_client's default prefix is ``kernel-ipc`` in the working directory, so kernels started at
    the same time from one folder (a sweep's workers, ``ci/run_notebooks.py --jobs 2``) would bind the
    same socket files and receive each other's messages.
    """

    def __init__(self, **kwargs):
        if os.name == "posix":
            kwargs.setdefault("transport", "ipc")
            if kwargs["transport"] == "ipc" and "ip" not in kwargs:
                from jupyter_core.paths import jupyter_runtime_dir

                runtime = jupyter_runtime_dir()
                os.makedirs(runtime, mode=0o700, exist_ok=True)
                kwargs["ip"] = os.path.join(runtime, f"dgnlib-{uuid.uuid4().hex[:16]}-ipc")
        super().__init__(**kwargs)

    #: ``--IPKernelApp.log_level`` given to IPython kernels (None: their own default, WARNING). The
    #: sweep's Dask workers set ``"ERROR"`` (:mod:`dgnlib.sweep.worker_setup`): a kernel whose worker
    #: is stopped (Ctrl-C) exits by itself and would otherwise print "Parent appears to have exited" to
    #: the terminal of the sweep. Errors, and everything a notebook prints, are unaffected.
    ipykernel_log_level: Optional[str] = None

    def format_kernel_cmd(self, extra_arguments: Optional[List[str]] = None) -> List[str]:
        """The kernel's command line, with :attr:`ipykernel_log_level` for an IPython kernel.

        Arguments:
            extra_arguments: arguments appended to the kernel spec's command (jupyter_client's).

        Returns:
            The command as a list of strings."""
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.ipykernel_log_level and any("ipykernel" in part for part in cmd):
            cmd.append(f"--IPKernelApp.log_level={self.ipykernel_log_level}")
        return cmd

