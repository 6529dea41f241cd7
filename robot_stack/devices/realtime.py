"""Real-time scheduling for the few threads on the control path (opt-in, Linux).

A thread that must wake on time even when the machine is busy (the actor's control loop, the
SpaceMouse reader) can ask for ``SCHED_FIFO``. Two traps, both handled here:

* It must go through ``pthread_setschedparam``, not the ``sched_setscheduler`` syscall: glibc
  keeps its own record of a policy set through pthreads and answers ``pthread_getschedparam``
  from it. Undone with the bare syscall, the thread runs normally but still reports
  SCHED_FIFO, and libraries that copy the creator's reported policy into new threads (Fast
  DDS does) start real-time threads.
* New threads inherit a real-time thread's policy, so a real-time thread must not start
  worker threads that spin (torch/OpenMP pools, DDS): callers raise only threads that start
  none after the raise.

Permission: root, ``CAP_SYS_NICE``, or an ``rtprio`` limit in /etc/security/limits.conf (the
same one libfranka needs on the robot PC, e.g. ``@realtime - rtprio 99``). Without it the
thread keeps normal scheduling and :func:`set_current_thread_scheduling` says how to fix it.
"""
from __future__ import annotations

import ctypes
import os

FIX_HINT = ("run as root, give the process CAP_SYS_NICE, or add an rtprio limit for your user "
            "(e.g. '@realtime - rtprio 99' in /etc/security/limits.conf, as for libfranka), "
            "or set the priority parameter to 0")


class RealtimeError(OSError):
    """The OS refused a scheduling change; the message says how to allow it."""


def current_thread_scheduling() -> tuple[int, int] | None:
    """(policy, priority) of the calling thread, or None where the OS has no such call."""
    try:
        return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    except (AttributeError, OSError):
        return None


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.pthread_self.restype = ctypes.c_ulong
    libc.pthread_setschedparam.argtypes = (ctypes.c_ulong, ctypes.c_int, ctypes.POINTER(ctypes.c_int))
    libc.pthread_getschedparam.argtypes = (ctypes.c_ulong, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    return libc


def pthread_scheduling() -> tuple[int, int] | None:
    """(policy, priority) of the calling thread as pthreads reports it (glibc's record)."""
    try:
        libc = _libc()
    except (OSError, AttributeError):
        return None
    policy, prio = ctypes.c_int(), ctypes.c_int()
    if libc.pthread_getschedparam(libc.pthread_self(), ctypes.byref(policy), ctypes.byref(prio)):
        return None
    return policy.value, prio.value


def set_current_thread_scheduling(policy: int, priority: int) -> None:
    """Set the calling thread's policy through pthreads (see the module docstring)."""
    try:
        libc = _libc()
    except (OSError, AttributeError) as e:
        raise RealtimeError(f"no pthread_setschedparam on this system: {e}") from e
    param = ctypes.c_int(int(priority))  # struct sched_param is one int on Linux
    err = libc.pthread_setschedparam(libc.pthread_self(), int(policy), ctypes.byref(param))
    if err:
        hint = f"; {FIX_HINT}" if err == 1 else ""  # EPERM
        raise RealtimeError(err, f"cannot set thread scheduling (policy {policy}, priority {priority}): "
                                 f"{os.strerror(err)}{hint}")


def make_current_thread_fifo(priority: int) -> None:
    """SCHED_FIFO at ``priority`` (1..98) for the calling thread; RealtimeError if refused."""
    if not 1 <= int(priority) <= 98:
        raise ValueError(f"real-time priority must be in 1..98 (99 is libfranka's), got {priority}")
    set_current_thread_scheduling(os.SCHED_FIFO, int(priority))
