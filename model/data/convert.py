"""A numeric CSV (or Parquet) file to .npy, streamed: inputs X.npy and targets y.npy.

The CSV has a header line naming its columns (each name once: a name used twice is
refused, as training refuses it), one row per line, numbers separated by ``delimiter`` (one
character). Fields may be quoted as the csv module and pyarrow write them (``"1.5"``, a
doubled ``""`` inside quotes, the delimiter inside quotes). Target columns are named or given
by 0-based index; every other column is a feature. Blank lines are skipped. A line with the
wrong number of fields, a field that is not a number (an empty one included) or not UTF-8
text, or a NaN/inf is a *bad row*: by default conversion stops with an error listing the
first bad lines by number (1 = the header); with ``skip_bad=True`` they are left out and
reported in the result. Nothing is dropped silently. Both .npy files are written through
temporary files and renamed at the end, so a failed conversion leaves no half file.

Clean files are parsed by pyarrow's streaming CSV reader (multi-threaded, one block in
memory at a time). A file with bad rows is read again by Python's csv module (the same
quoting rules), which knows every line's number: it only runs when there is something to
report. For files with text columns, missing values or categories, train on the file
directly instead (``model.data.tabular``).
"""

import csv
import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from ...kernels.errors import InvalidValueError, MissingFileError
from . import tabular
from .sources import NpyWriter
from .paths import check_outputs
from .validation import is_number

#: Bad lines quoted in an error message (all are counted).
MAX_REPORTED = 10


class CSVFormatError(InvalidValueError):
    """The CSV has bad rows; ``bad_lines`` lists (line number, reason) of the first ones."""

    def __init__(self, message, bad_lines):
        super().__init__(message)
        self.bad_lines = bad_lines


@dataclass
class Conversion:
    """What ``csv_to_npy`` wrote."""

    rows: int
    features: list
    targets: list
    bad_lines: list = field(default_factory=list)  # (line number, reason), when skip_bad
    n_bad: int = 0


def _column_indices(header, targets, path):
    """(target column indices, column names); a target is a name, or an index (int or digits).
    A header naming a column twice is refused (training's check): which is meant is a guess,
    and the other would be a feature."""
    names = [h.strip() for h in header]
    tabular.check_unique("convert: %s" % path, names)
    chosen = []
    for t in targets:
        if isinstance(t, str) and t.strip() in names:
            chosen.append(names.index(t.strip()))
            continue
        if isinstance(t, str) and t.strip().isdigit():
            t = int(t)
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
            if not 0 <= t < len(names):
                raise InvalidValueError("convert: target column %d is out of "
                                        "range: %s has %d columns"
                                        % (t, path, len(names)))
            chosen.append(int(t))
        else:
            raise InvalidValueError("convert: target column %r is not in the "
                                    "header of %s (columns: %s)"
                                    % (t, path, ", ".join(names)))
    if len(set(chosen)) != len(chosen):
        raise InvalidValueError("convert: target columns %r name "
                                "the same column twice" % (targets,))
    if len(chosen) == len(names):
        raise InvalidValueError("convert: every column of %s is a target: "
                                "no features are left" % path)
    return chosen, names


def _records(rows, path):
    """(first line number, fields) of each record of a ``csv.reader`` not yet read, blank
    lines left out; a record the csv module refuses is an error naming its line."""
    while True:
        start = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidValueError("convert: %s: line %d: %s" % (path, start, exc)) from None
        if row and (len(row) > 1 or row[0].strip()):
            yield start, row


def _bad_field(parts, names):
    """(why a row of the right length is not numbers, the column): its first field that is
    not UTF-8 text or not a number."""
    for p, name in zip(parts, names):
        raw = tabular.not_utf8_field(p)
        if raw is not None:
            return "field %r is not UTF-8 text: save the file as UTF-8" % raw, name
        if not is_number(p):
            return "field %r is not a number" % p.strip(), name
    return "not numbers", None  # pragma: no cover - NumPy refused what float() reads


#: The largest float32 value: a larger one is a bad row of a float32 conversion.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class _Reason(str):
    """A bad line's reason (as ``bad_lines`` holds it) that knows the column it is about,
    for the error message to name it."""

    def __new__(cls, text, column=None):
        self = super().__new__(cls, text)
        self.column = column
        return self


def _parse_records(records, names, dtype=np.float64):
    """(values (rows, n_fields) float64, [(line, reason)] of bad lines) of (line, fields)
    records, the fields as the csv module splits and unquotes them; ``names``: the columns
    (or their number); values beyond ``dtype``'s range are bad too."""
    if isinstance(names, int):
        names = [None] * names
    n_fields = len(names)
    fields, good_lines, bad = [], [], []
    for line, parts in records:
        if len(parts) != n_fields:
            bad.append((line, "expected %d fields, got %d" % (n_fields, len(parts))))
            continue
        fields.append(parts)
        good_lines.append(line)
    if not fields:
        return np.empty((0, n_fields)), bad
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError:  # find the culprits one row at a time (UnicodeError is one too)
        values, keep = [], []
        for parts, line_no in zip(fields, good_lines):
            try:
                values.append([float(p) for p in parts])
                keep.append(line_no)
            except ValueError:
                why, column = _bad_field(parts, names)
                bad.append((line_no, _Reason(why, column)))
        values = np.array(values, dtype=np.float64).reshape(-1, n_fields)
        good_lines = keep
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        for r in np.flatnonzero(~finite):
            bad.append((good_lines[r], "holds NaN or inf"))
        values = values[finite]
        good_lines = [line for line, ok in zip(good_lines, finite) if ok]
    big = _overflows(values, dtype)
    if big is not None:
        rows_big = big.any(axis=1)
        for r in np.flatnonzero(rows_big):
            k = int(np.flatnonzero(big[r])[0])
            bad.append((good_lines[r], _Reason("%r overflows %s" % (float(values[r, k]),
                                                                    np.dtype(dtype).name),
                                               names[k])))
        values = values[~rows_big]
    bad.sort()
    return values, bad


def _overflows(values, dtype):
    """A boolean mask of the finite values beyond a float ``dtype``'s range, or None when
    there are none."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or dtype.itemsize >= 8 or not values.size:
        return None
    big = np.abs(values) > float(np.finfo(dtype).max)
    return big if big.any() else None


def csv_to_npy(csv_path, x_path, y_path, targets, dtype=np.float32, delimiter=None,
               chunk_rows=100_000, skip_bad=False):
    """Convert ``csv_path`` into ``x_path`` (rows, features) and ``y_path`` (rows, targets).

    ``targets``: a column name or 0-based index, or a list of them; an empty list (and
    ``y_path=None``) converts every column into X, for data to predict on. Reads
    ``chunk_rows`` lines at a time, so memory stays at one chunk. Returns a
    ``Conversion``; raises ``CSVFormatError`` listing bad lines unless ``skip_bad``.
    ``delimiter``: one character; None finds it in the header as training does
    (``tabular.delimiter_of``: a comma, else a semicolon, tab or bar).
    """
    csv_path = os.fspath(csv_path)
    if not os.path.isfile(csv_path):
        raise MissingFileError("convert: no such file: %r" % csv_path)
    for what, out in (("--out-x (x_path)", x_path), ("--out-y (y_path)", y_path)):
        if out is not None and not os.fspath(out).lower().endswith(".npy"):
            raise InvalidValueError("convert: %s must end in .npy (it is "
                                    "written as a NumPy array), got %r" % (what, os.fspath(out)))
    check_outputs({"convert: x_path": x_path, "convert: y_path": y_path},
                  {"csv_path": csv_path})
    if isinstance(targets, (str, int, np.integer)):
        targets = [targets]
    targets = list(targets)
    if not targets and y_path is not None:
        raise InvalidValueError("convert: name at least one target column")
    dtype = np.dtype(dtype)
    delimiter = (tabular.delimiter_of(csv_path) if delimiter is None
                 else tabular.check_delimiter(delimiter, "convert: --delimiter"))
    if _is_parquet(csv_path):
        return _parquet_to_npy(csv_path, x_path, y_path, targets, dtype)
    tabular.check_csv_bytes(csv_path, "convert: ")
    if not skip_bad:
        fast = _csv_to_npy_pyarrow(csv_path, x_path, y_path, targets, dtype, delimiter)
        if fast is not None:
            return fast
    # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name;
    # bytes that are not UTF-8 are kept (as surrogates) to be reported by line.
    with tabular.open_csv_text(csv_path, "surrogateescape") as f:
        records = _records(csv.reader(f, delimiter=delimiter), csv_path)
        line_no, header = next(records, (None, None))  # leading blank lines are skipped
        if header is None:
            raise InvalidValueError("convert: %s is empty: its first line must name the columns"
                                    % csv_path)
        for k, name in enumerate(header):
            raw = tabular.not_utf8_field(name)
            if raw is not None:
                raise InvalidValueError("convert: %s: line %d (the header), column %d: %r is not "
                                        "UTF-8 text: save the file as UTF-8"
                                        % (csv_path, line_no, k + 1, raw))
        target_idx, names = _column_indices(header, targets, csv_path)
        feature_idx = [i for i in range(len(names)) if i not in target_idx]
        writers = [NpyWriter(os.fspath(x_path), dtype, len(feature_idx))]
        if y_path is not None:
            writers.append(NpyWriter(os.fspath(y_path), dtype, len(target_idx)))
        bad_lines, n_bad = [], 0
        try:
            while True:
                chunk = list(itertools.islice(records, chunk_rows))
                if not chunk:
                    break
                values, bad = _parse_records(chunk, names, dtype)
                n_bad += len(bad)
                bad_lines.extend(bad[:MAX_REPORTED - len(bad_lines)])
                if bad and not skip_bad:
                    continue  # keep reading to count them all, write nothing more
                if n_bad == 0 or skip_bad:
                    writers[0].append(values[:, feature_idx])
                    if len(writers) > 1:
                        writers[1].append(values[:, target_idx])
            if n_bad and not skip_bad:
                raise CSVFormatError(
                    "convert: %s has %d bad row%s (nothing written): %s"
                    % (csv_path, n_bad, "s" if n_bad > 1 else "",
                       _listed(bad_lines, n_bad)), bad_lines)
            _commit(writers, csv_path, n_bad, bad_lines)
        except BaseException:
            _discard(writers)
            raise
    return Conversion(rows=writers[0].rows, features=[names[i] for i in feature_idx],
                      targets=[names[i] for i in target_idx], bad_lines=bad_lines, n_bad=n_bad)


def _listed(bad_lines, n_bad):
    return "; ".join(_line_reason(line, why) for line, why in bad_lines) + (
        "; ..." if n_bad > len(bad_lines) else "")


def _line_reason(line, why):
    """'line N: why', or 'line N, column 'c': why' for a reason about one field."""
    column = getattr(why, "column", None)
    if column is None:
        return "line %d: %s" % (line, why)
    why = str(why)
    if why.startswith("field "):
        why = why[len("field "):]
    return "line %d, column %r: %s" % (line, column, why)


def _commit(writers, where, n_bad=0, bad_lines=()):
    """Rename every written .npy into place; an error (nothing written) if there are no rows."""
    if writers[0].rows == 0:
        if n_bad:
            raise InvalidValueError("convert: %s has no good data rows: %s bad "
                                    "(nothing written): %s"
                                    % (where, "all "
                                              "%d are" % n_bad if n_bad > 1 else "its one row is",
                                       _listed(bad_lines, n_bad)))
        raise InvalidValueError("convert: %s has column names but no data rows" % where)
    for w in writers:
        w.commit()


def _discard(writers):
    for w in writers:
        w.discard()


# ----------------------------------------------------------------------------- pyarrow


def _is_parquet(path):
    return os.path.splitext(path)[1].lower() in tabular.PARQUET_EXTENSIONS


def _write_batches(batches, names, x_path, y_path, targets, dtype, where):
    """Write the numeric columns of a stream of RecordBatches as X and y; None (nothing
    written) at the first non-finite value, for the caller to report it."""
    target_idx, names = _column_indices(names, targets, where)
    feature_idx = [i for i in range(len(names)) if i not in target_idx]
    writers = [NpyWriter(os.fspath(x_path), dtype, len(feature_idx))]
    if y_path is not None:
        writers.append(NpyWriter(os.fspath(y_path), dtype, len(target_idx)))
    try:
        for batch in batches:
            values = np.column_stack([np.asarray(c.to_numpy(zero_copy_only=False),
                                                 dtype=np.float64) for c in batch.columns])
            if not np.isfinite(values).all() or _overflows(values, dtype) is not None:
                _discard(writers)
                return None
            writers[0].append(values[:, feature_idx])
            if len(writers) > 1:
                writers[1].append(values[:, target_idx])
        _commit(writers, where)
    except BaseException:
        _discard(writers)
        raise
    return Conversion(rows=writers[0].rows, features=[names[i] for i in feature_idx],
                      targets=[names[i] for i in target_idx])


def _csv_to_npy_pyarrow(csv_path, x_path, y_path, targets, dtype, delimiter):
    """The fast path: pyarrow parses the whole file as float64 columns. None when it finds
    a bad row (the line parser then reports them by line)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        head = pacsv.open_csv(tabular.arrow_csv_input(csv_path), parse_options=parse,
                              read_options=pacsv.ReadOptions(block_size=1 << 16))
        names = head.schema.names
        convert = pacsv.ConvertOptions(column_types={n: pa.float64() for n in names},
                                       null_values=[], strings_can_be_null=False)
        reader = pacsv.open_csv(tabular.arrow_csv_input(csv_path), parse_options=parse,
                                convert_options=convert,
                                read_options=pacsv.ReadOptions(block_size=tabular.BLOCK_BYTES))
        return _write_batches(reader, names, x_path, y_path, targets, dtype, csv_path)
    except (pa.ArrowInvalid, UnicodeDecodeError):  # the line parser says where
        return None
    except OSError as exc:  # a compressed file damaged on the way
        raise InvalidValueError("convert: %s: not a readable compressed file (%s)"
                                % (csv_path, str(exc).splitlines()[0])) from None


def _parquet_to_npy(path, x_path, y_path, targets, dtype):
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        f = pq.ParquetFile(path)
        names = f.schema_arrow.names
        for fld in f.schema_arrow:
            t = fld.type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                    or pa.types.is_decimal(t) or pa.types.is_null(t)):
                raise InvalidValueError("convert: %s: column %r has Parquet type %s, not numbers: "
                                        "train on the file directly (python -m "
                                        "numba_dense train --data "
                                        "%s, --drop-cols %s)" % (path, fld.name, t, path, fld.name))
        result = _write_batches(f.iter_batches(batch_size=1 << 16), names, x_path, y_path,
                                targets, dtype, path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidValueError("convert: %s is not a "
                                "numeric Parquet file (%s)" % (path, exc)) from None
    if result is None:
        why = _parquet_bad_values(path, dtype)
        raise InvalidValueError("convert: %s%s%s" % (path, "" if why.startswith(":") else " ", why))
    return result


def _parquet_bad_values(path, dtype):
    """What is wrong with the values of a Parquet file ``_write_batches`` refused: the first
    column and row holding a missing, NaN or inf value, or one beyond ``dtype``'s range."""
    import pyarrow.parquet as pq
    first = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 16):
        for name, c in zip(batch.schema.names, batch.columns):
            x = np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.float64)
            bad = ~np.isfinite(x)
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                return ("holds missing, NaN or inf values (row %d, column %r): train on the "
                        "file directly (python -m numba_dense train --data %s), which "
                        "imputes missing ones" % (first + r + 1, name, path))
            big = _overflows(x, dtype)
            if big is not None:
                r = int(np.flatnonzero(big)[0])
                return (": row %d, column %r: %r overflows %s"
                        % (first + r + 1, name, float(x[r]), np.dtype(dtype).name))
        first += batch.num_rows
    return "holds values that cannot be converted"  # pragma: no cover
