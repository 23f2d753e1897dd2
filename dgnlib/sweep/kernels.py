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

