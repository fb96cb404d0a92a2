"""Ctrl-C and the stop signals during training: held where work would be half done,
raised where the work so far can be kept.

A compiled epoch cannot be stopped half way: Python raises ``KeyboardInterrupt`` only once
the call returns. ``sigint_deferred`` holds a signal to the end of a block (so "rows trained
so far" is exact); ``sigint_ignored`` ignores it while a save finishes;
``raise_on_sigterm`` makes SIGTERM and its kin raise as Ctrl-C does.
"""

import signal
import threading
from contextlib import contextmanager


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), or SIGTERM where it is handled as one, stopped ``fit`` after the
    segment of data it was training on.

    The network holds the parameters reached so far; ``history.interrupted_epoch`` names
    the epoch that was cut short (its loss is not recorded) and ``rows_done`` how many of
    its rows were trained on. A checkpoint, if one was set, was written for the last whole
    epoch, so ``resume=True`` continues exactly as an uninterrupted run would. ``signum``
    is the signal that stopped it.
    """

    def __init__(self, epoch, rows_done, history, signum=signal.SIGINT):
        super().__init__("training interrupted in epoch %d after %d rows" % (epoch, rows_done))
        self.epoch = epoch
        self.rows_done = rows_done
        self.history = history
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as a Ctrl-C is (by ``raise_on_sigterm``), so that the same
    code keeps the work; ``signum`` tells them apart (the exit status is 128 + signum)."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__("terminated (%s)" % signal.Signals(signum).name)
        self.signum = signum


def raise_on_sigterm(signum, frame):
    """A SIGTERM (or SIGHUP) handler that raises ``Terminated``: what the command line
    installs, so a batch scheduler's time limit, ``timeout``, ``docker stop`` or a closed
    terminal saves the work as Ctrl-C does. In a script of your own,
    ``signal.signal(signal.SIGTERM, raise_on_sigterm)``."""
    raise Terminated(signum)


#: The signals that stop training with the work kept, when their handler raises (Python's
#: default for SIGINT; ``raise_on_sigterm`` or ``signal.default_int_handler`` for SIGTERM
#: and SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP",
                                                        "SIGUSR1", "SIGUSR2", "SIGALRM",
                                                        "SIGXCPU") if hasattr(signal, name))


_RAISING = (signal.default_int_handler, raise_on_sigterm)


def raising(handler):
    """Mark ``handler`` as one that raises ``KeyboardInterrupt`` (after work of its own, such
    as a search setting its stop event), so that ``sigint_deferred`` holds its signal to the
    end of a compiled segment as it holds Python's default one; returns ``handler``."""
    handler.raises_keyboard_interrupt = True
    return handler


def raises(handler):
    """Whether a signal handler raises ``KeyboardInterrupt``: Python's default for SIGINT,
    ``raise_on_sigterm``, or one marked by ``raising``."""
    return handler in _RAISING or getattr(handler, "raises_keyboard_interrupt", False) is True


def restore_handlers(previous):
    """Put back every handler of ``previous`` ({signal: handler}), each one even when a
    stop signal raises while they are put back (a SIGINT arriving once SIGINT's own handler
    is back raises at the next line, which left the later signals' handlers as the held
    ones: a SIGHUP or SIGUSR1 then went into a list nobody reads); the exception is raised
    once all are back."""
    pending = dict(previous)
    raised = None
    while pending:
        try:
            while pending:
                signum, handler = next(iter(pending.items()))
                signal.signal(signum, handler)
                del pending[signum]
        except BaseException as exc:  # noqa: BLE001 - raised below, once all are back
            raised = raised or exc
    if raised is not None:
        raise raised


@contextmanager
def sigint_ignored():
    """Ignore Ctrl-C and SIGTERM for the block: finishing a save beats a traceback or a
    half-kept run. On another thread, which receives no signals, its ``stop_on`` event (its
    Ctrl-C) is what is held off: a save inside the block (``paths.atomic_write``) then
    does not raise the stop at its end, where it would replace the ``TrainingInterrupted``
    that the interrupted fit is about to raise with a bare ``KeyboardInterrupt``."""
    if threading.current_thread() is not threading.main_thread():
        with stop_on(None):
            yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS
                if raises(signal.getsignal(s)) or s == signal.SIGINT}
    try:
        yield
    finally:
        restore_handlers(previous)


_thread_stop = threading.local()


@contextmanager
def stop_on(event):
    """In a thread other than the main one (which alone receives signals): raise
    ``KeyboardInterrupt`` where ``sigint_deferred`` would raise a held Ctrl-C (at the end of
    its block) once ``event`` is set, so that the thread that started this one can stop its
    training as Ctrl-C stops the main thread's (``Ensemble.fit``)."""
    previous = getattr(_thread_stop, "event", None)
    _thread_stop.event = event
    try:
        yield
    finally:
        _thread_stop.event = previous


def stop_requested():
    """Whether a ``stop_on`` event of this thread is set: the search or ensemble that runs
    this thread's fit has been told to stop (by Ctrl-C, or an error elsewhere). A fit that
    would keep its work on a Ctrl-C of its own (the estimators, as scikit-learn's do)
    raises instead, so that the stop reaches the code that asked for it."""
    event = getattr(_thread_stop, "event", None)
    return event is not None and event.is_set()


def raise_if_stopped():
    """``KeyboardInterrupt`` when a ``stop_on`` event of this thread is set: where a fit run
    by a search or an ensemble returns to Python between its compiled parts (the end of a
    ``sigint_deferred`` block, an L-BFGS evaluation)."""
    if stop_requested():
        raise KeyboardInterrupt("stopped by the search or ensemble running this fit")


@contextmanager
def sigint_deferred():
    """Hold a Ctrl-C (or a SIGTERM handled as one) that arrives during the block until the
    block ends, then raise it.

    A compiled epoch cannot be stopped half way: Python raises ``KeyboardInterrupt`` only
    once the call returns, and where it lands decides whether the bookkeeping after it ran.
    Deferring it to the end of the block makes "rows trained so far" exact. Only the main
    thread can hold signals, and a handler other than the raising ones (``raises``) is left
    alone. In any thread, a ``stop_on`` event that is set raises ``KeyboardInterrupt`` at
    the end of the block: a thread's stop comes that way, and on the main thread it also
    catches a search's Ctrl-C whose exception something between segments swallowed.
    """
    caught = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in STOP_SIGNALS:
            handler = signal.getsignal(s)
            if raises(handler):
                previous[s] = handler
                signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        restore_handlers(previous)
    if caught:
        previous[caught[0]](caught[0], None)  # raises as the signal would have
    raise_if_stopped()
