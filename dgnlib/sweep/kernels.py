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

from jupyter_client.manager import KernelManager

__all__ = ["IPCKernelManager"]


class IPCKernelManager(KernelManager):
    """A ``KernelManager`` whose kernels use the IPC transport on POSIX (TCP elsewhere)."""

    def __init__(self, **kwargs):
        if os.name == "posix":
            kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)

