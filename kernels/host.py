"""The machine the kernels run on: its CPU, the library versions, where tuned values live.

Plain Python, no Numba: ``kernels.config`` reads the tuned dispatch values through it
before any kernel is defined, and the benchmarks name the CPU their figures come from with
``cpu_model``.

The dispatch values ``python -m numba_dense tune`` measures are kept in one JSON file per
CPU (``cpu_key``), tile vector width and library versions (``tuning_file``), in
``$XDG_CACHE_HOME/numba_dense/``
(``~/.cache/numba_dense/`` when the variable is unset or not an absolute path).
``NUMBA_DENSE_TUNING`` chooses: unset or empty, that file; ``off``, none (the packaged
values); any other value, the path of a file to read (and to write, for ``tune``).
"""

import os
import platform
import re

#: The environment variable that turns the tuned values off or names their file.
TUNING_ENV = "NUMBA_DENSE_TUNING"
#: Its values that turn the tuned values off (compared in lower case).
TUNING_OFF = ("off", "0", "no", "false", "none")
#: The CPU flags a tuning file records: the widest vectors the CPU has change the crossovers.
VECTOR_FLAGS = ("avx2", "avx512f")
#: The layout of a tuning file (``format`` in it); a file of another layout is ignored.
TUNING_FORMAT = 1


def _cpuinfo_field(name):
    """The value of the first ``name : value`` line of /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_model():
    """The CPU's model name (str): /proc/cpuinfo's ``model name``, else the platform's word
    for it, else ``"unknown CPU"``. Every benchmark names the CPU its figures come from, and
    the tuned values are kept per CPU model."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def cpu_key():
    """The CPU a tuning file belongs to (str): ``cpu_model()`` and, where /proc/cpuinfo has
    them, its family and model numbers (``AMD EPYC (family 26, model 2)``). Cloud machines
    often report one model name for several generations (an AMD Zen 3 and a Zen 5 both said
    ``AMD EPYC``), whose crossovers differ."""
    family, number = _cpuinfo_field("cpu family"), _cpuinfo_field("model")
    if family is None or number is None:
        return cpu_model()
    return "%s (family %s, model %s)" % (cpu_model(), family, number)


def cpu_flags():
    """{flag: bool} for ``VECTOR_FLAGS`` (``avx2``, ``avx512f``): what /proc/cpuinfo lists,
    else NumPy's view of the CPU (all False where neither says)."""
    listed = _cpuinfo_field("flags")
    if listed is not None:
        have = set(listed.split())
        return {flag: flag in have for flag in VECTOR_FLAGS}
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - another NumPy layout
        features = {}
    return {flag: bool(features.get(flag.upper(), False)) for flag in VECTOR_FLAGS}


def library_versions():
    """{"numba_dense", "numba", "numpy": version string}: compiled code and measured
    crossovers depend on all three ("unknown" where a version cannot be read)."""
    from importlib import metadata
    versions = {}
    for key, dist in (("numba_dense", "numba-dense"), ("numba", "numba"), ("numpy", "numpy")):
        try:
            versions[key] = metadata.version(dist)
        except Exception:  # not installed as a distribution (a source checkout on sys.path)
            versions[key] = "unknown"
    return versions


def cache_base():
    """``(folder, origin)``: the user's cache directory (str) and where it came from,
    ``"XDG_CACHE_HOME"`` or ``"~/.cache"``. A relative ``XDG_CACHE_HOME`` is ignored, as
    the XDG base directory specification says (it would depend on the working folder)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if base and os.path.isabs(base):
        return base, "XDG_CACHE_HOME"
    return os.path.join(os.path.expanduser("~"), ".cache"), "~/.cache"


def cache_folder():
    """numba-dense's folder in the user's cache directory (str, not made here):
    ``$XDG_CACHE_HOME/numba_dense`` (when that is an absolute path), or
    ``~/.cache/numba_dense``."""
    return os.path.join(cache_base()[0], "numba_dense")


def _slug(text):
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "unknown"


def tuning_file(vector_bytes, model=None, versions=None):
    """The default tuning file of this CPU (``cpu_key``), tile vector width in bytes and
    library versions (str): ``dispatch-<cpu>-v<bytes>-nd<v>-numba<v>-numpy<v>.json`` in
    ``cache_folder()``."""
    model = cpu_key() if model is None else model
    versions = library_versions() if versions is None else versions
    name = "dispatch-%s-v%d-nd%s-numba%s-numpy%s.json" % (
        _slug(model), vector_bytes, _slug(versions["numba_dense"]), _slug(versions["numba"]),
        _slug(versions["numpy"]))
    return os.path.join(cache_folder(), name)


def tuning_choice(vector_bytes, environ=None):
    """Which tuning file to use for tiles of ``vector_bytes``-byte vectors: ``(path,
    named)``, path None when ``NUMBA_DENSE_TUNING`` is off; ``named`` is True when the
    variable names the file."""
    environ = os.environ if environ is None else environ
    value = environ.get(TUNING_ENV, "").strip()
    if value.lower() in TUNING_OFF:
        return None, False
    if value and value.lower() != "on":
        return os.path.abspath(os.path.expanduser(value)), True
    return tuning_file(vector_bytes), False
