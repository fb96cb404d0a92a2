"""The progress display of long epochs: a tqdm bar with rows/s and the running loss."""

import sys


class _Silent:
    def update(self, n):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass


def wanted(progress, verbose, stream=None):
    """Show a bar? ``progress`` True/False decides; None means: when verbose on a terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    return bool(verbose) and hasattr(stream, "isatty") and stream.isatty()


def bar(total, desc, enabled):
    """A tqdm bar over ``total`` rows on stderr, or an object that ignores every call."""
    if not enabled:
        return _Silent()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, leave=False,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
