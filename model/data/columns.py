"""What a table's column holds, decided once per file, and how its values become numbers.

A column is one of four *types*:

- ``number``: integers, floats, decimals; in a Parquet file also durations (as seconds)
  and times of day (seconds since midnight);
- ``bool``: True/False (any case in a CSV, as ``pandas.to_csv`` writes bool columns),
  as 1 and 0;
- ``datetime``: dates and timestamps, with or without a time zone, as seconds since
  1970-01-01 UTC (ISO 8601 in a CSV: ``2024-03-01``, ``2013-01-01 05:00:00``,
  ``2017-01-01T06:00:42Z``, ``...+01:00``);
- ``text``: anything else, one-hot encoded by ``model.data.tabular``.

A CSV is read with every column as text and typed over the *whole* file
(``CsvTyper``): a column is the first of bool, number, datetime that every value in it
parses as, else text. A Parquet file's types are its own (``parquet_type``); those that
hold no single value per row (lists, structs, maps, binary) are a ``TableError``. The type
found is saved with the model, and new files are read with it: a column learned as text
stays text (``"007"`` is ``"007"``) whatever a later file's rows look like.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...kernels.errors import InvalidValueError

#: The types a CSV column is tried as, most specific first.
CSV_CANDIDATES = ("bool", "number", "datetime")
#: Spellings of True and False in a CSV (compared after lower-casing and trimming).
TRUE_FALSE = ("true", "false")

_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class ColumnTypeError(InvalidValueError):
    """A column whose Arrow type cannot be a feature or target (``name``, ``arrow_type``)."""

    def __init__(self, name, arrow_type):
        super().__init__("column %r has type %s, which cannot be a network input: leave it "
                         "out with --drop-cols %s (drop=[...])" % (name, arrow_type, name))


class ParseError(InvalidValueError):
    """A value that does not parse as its column's type; ``row`` is its index in the batch."""

    def __init__(self, value, kind, row):
        super().__init__("%r is not a %s" % (value, "date or time" if kind == "datetime"
                                             else kind))
        self.value, self.kind, self.row = value, kind, row


def parquet_type(name, arrow_type):
    """The type of a Parquet column of Arrow type ``arrow_type``, or ``ColumnTypeError``."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
            or pa.types.is_duration(t) or pa.types.is_time(t) or pa.types.is_null(t)):
        return "number"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or (
            hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t)):
        return "text"
    raise ColumnTypeError(name, arrow_type)


def _plain(values):
    """A ChunkedArray or dictionary array as one plain Array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values


def _is_text(values):
    t = values.type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


def _parse_bool(strings):
    words = pc.utf8_lower(pc.utf8_trim_whitespace(strings))
    words_set = string_array(TRUE_FALSE)
    ok = pc.is_in(words, value_set=words_set)
    return pc.equal(words, words_set[0]).cast(pa.float64()), ok


# Arrow values made from their buffers. ``pa.array``, ``pa.scalar``, ``fill_null`` and the
# compute functions, given a Python value (a list, a str, a number), first import pandas
# to ask whether it is a pandas object: 0.15 s of a small table's whole ``train``, in a
# process that never uses pandas.

def string_array(texts):
    """An Arrow string array of Python strings."""
    data = [t.encode("utf-8") for t in texts]
    offsets = np.cumsum([0] + [len(d) for d in data], dtype=np.int64)
    if offsets[-1] >= 2 ** 31:
        return pa.Array.from_buffers(pa.large_string(), len(data), [
            None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(data))])
    return pa.Array.from_buffers(pa.string(), len(data), [
        None, pa.py_buffer(offsets.astype(np.int32).tobytes()), pa.py_buffer(b"".join(data))])


def text_scalar(text):
    """An Arrow string scalar."""
    return string_array([text])[0]


def int32_scalar(value):
    """An Arrow int32 scalar."""
    return pa.Array.from_buffers(pa.int32(), 1, [
        None, pa.py_buffer(np.array([value], np.int32).tobytes())])[0]


def float64_scalar(value):
    """An Arrow float64 scalar."""
    return pa.Array.from_buffers(pa.float64(), 1, [
        None, pa.py_buffer(np.array([value], np.float64).tobytes())])[0]


def float64_values(values):
    """A writable float64 NumPy copy of an Arrow array or chunked array of numbers or
    bools (cast as ``pc.cast(safe=False)`` casts: large integers round), nulls as NaN;
    ``to_numpy`` of any array imports pandas (above)."""
    if isinstance(values, pa.ChunkedArray):
        return np.concatenate([float64_values(c) for c in values.chunks] or [np.empty(0)])
    if values.type != pa.float64():
        values = values.cast(pa.float64(), safe=False)
    validity, data = values.buffers()[:2]
    n, offset = len(values), values.offset
    out = np.empty(n) if data is None else np.frombuffer(data, np.float64, n, offset * 8).copy()
    if values.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
        out[bits[offset:offset + n] == 0] = np.nan
    return out


def true_rows(mask):
    """Indices (int64) of the rows where a boolean Arrow array is true (null: not)."""
    return np.flatnonzero(float64_values(mask) == 1)


def _parse_number(strings):
    return pc.cast(pc.utf8_trim_whitespace(strings), pa.float64())


def _parse_datetime(strings):
    """Seconds since the epoch of ISO 8601 strings: naive ones as UTC, zoned ones converted."""
    strings = pc.utf8_trim_whitespace(strings)
    try:
        stamps = pc.cast(strings, pa.timestamp("ns"))
    except pa.ArrowInvalid:
        stamps = pc.cast(strings, pa.timestamp("ns", tz="UTC"))
    return _temporal_seconds(stamps)


def _temporal_seconds(values):
    """Seconds (float64 Arrow array) of a date, timestamp, duration or time array."""
    t = values.type
    if pa.types.is_date32(t):
        return pc.multiply(values.cast(pa.int32()).cast(pa.float64(), safe=False),
                           float64_scalar(86400.0))
    if pa.types.is_date64(t):
        return pc.multiply(values.cast(pa.int64()).cast(pa.float64(), safe=False),
                           float64_scalar(1e-3))
    # timestamps (zoned ones are stored as UTC), durations and times: an int count of units
    as_int = values.view(pa.int64()) if not pa.types.is_time32(t) else values.view(pa.int32())
    return pc.multiply(as_int.cast(pa.float64(), safe=False), float64_scalar(_SECONDS[t.unit]))


#: A number written with a decimal comma (``-0,0026``), or a plain integer: what a column of
#: a CSV whose delimiter is not a comma may hold to be read as numbers (``decimal=","``).
DECIMAL_COMMA = r"^\s*[+-]?\d+(,\d+)?([eE][+-]?\d+)?\s*$"


def decimal_comma_numbers(strings):
    """True when every non-missing string is a number with a decimal comma or an integer
    (and at least one is present)."""
    strings = _plain(strings).drop_null()
    if len(strings) == 0 or not _is_text(strings):
        return False
    return bool(pc.all(pc.match_substring_regex(strings, DECIMAL_COMMA)).as_py())


def _comma_to_point(strings):
    """Strings of a decimal-comma column with the comma read as a point; None when one
    non-missing value is not such a number."""
    if not decimal_comma_numbers(strings) and len(_plain(strings).drop_null()):
        return None
    return pc.replace_substring(_plain(strings), ",", ".")


def parses_as(strings, kind):
    """True when every non-missing value of a string array parses as ``kind``."""
    strings = strings.drop_null()
    if kind == "bool":
        return bool(pc.all(_parse_bool(strings)[1]).as_py() is not False)
    try:
        (_parse_number if kind == "number" else _parse_datetime)(strings)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def csv_type(strings):
    """The first of ``CSV_CANDIDATES`` that every non-missing string parses as, else text;
    None when all are missing."""
    present = strings.drop_null()
    if len(present) == 0:
        return None
    for kind in CSV_CANDIDATES:
        if parses_as(present, kind):
            return kind
    return "text"


def to_float(values, kind, decimal=None):
    """float64 NumPy values of a column of a numeric ``kind`` (number, bool, datetime), missing
    ones NaN. String arrays (CSV) are parsed; typed ones (Parquet) converted. A value that
    does not parse raises ``ParseError`` with its row. ``decimal=","``: a number column
    written with decimal commas (``DECIMAL_COMMA``)."""
    x = _floats_or_none(values, kind, decimal)
    if x is None:
        raise _first_bad(_plain(values), kind, decimal)
    return x


def _floats_or_none(values, kind, decimal=None):
    """``to_float``, or None where a string does not parse (without looking for which)."""
    values = _plain(values)
    t = values.type
    if decimal == "," and _is_text(values):
        values = _comma_to_point(values)
        if values is None:
            return None
    if _is_text(values):
        try:
            if kind == "bool":
                x, ok = _parse_bool(values)
                if not pc.all(pc.or_kleene(ok, pc.is_null(values))).as_py():
                    return None
            elif kind == "number":
                x = _parse_number(values)
            else:
                x = _parse_datetime(values)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    elif pa.types.is_temporal(t):
        x = _temporal_seconds(values)
    elif pa.types.is_null(t):
        x = pa.nulls(len(values), pa.float64())
    else:  # large integers round to the nearest float64, as NumPy's astype does
        x = values.cast(pa.float64(), safe=False)
    return float64_values(x)


def to_text(values):
    """A column as a string array (dictionary-encoded strings decoded; numbers as written)."""
    values = _plain(values)
    return values if _is_text(values) else values.cast(pa.string())


def _first_bad(strings, kind, decimal=None):
    """The ``ParseError`` of the first value of ``strings`` that does not parse as ``kind``."""
    for row, value in enumerate(strings.to_pylist()):
        if value is None:
            continue
        if decimal == ",":
            if not decimal_comma_numbers(pa.array([value])):
                return ParseError(value, "number written with a decimal comma", row)
        elif not parses_as(pa.array([value]), kind):
            return ParseError(value, kind, row)
    return ParseError(None, kind, 0)  # pragma: no cover - the batch failed as a whole


class CsvTyper:
    """The type of one CSV column over the whole file, batch by batch.

    ``add(strings)`` returns the type so far and, when that type is numeric, the batch's
    values as ``to_float`` gives them (parsed once: the parse is the type check).
    ``widened`` is True once a column that held values of one type met one of another (so it
    became text after values had already been counted as numbers: its text statistics need
    a pass of their own).

    ``decimal_comma`` (a CSV whose delimiter is not a comma): a column whose every value is
    a number with a decimal comma (``-0,0026``) or an integer is a number column read so;
    ``decimal`` is then ``","``.
    """

    def __init__(self, decimal_comma=False):
        self.kind = None
        self.widened = False
        self.decimal = None
        # True while every value so far fits DECIMAL_COMMA: integers so far read the same
        # either way, so a later batch of decimal commas keeps the column numbers.
        self.comma_ok = decimal_comma

    def add(self, strings):
        if self.kind == "text":
            return self.kind, None
        if self.comma_ok and len(_plain(strings).drop_null()):
            self.comma_ok = decimal_comma_numbers(strings)
        if self.kind is not None:
            x = _floats_or_none(strings, self.kind, self.decimal)
            if x is None and self.kind == "number" and self.comma_ok:
                self.decimal = ","
                x = _floats_or_none(strings, self.kind, self.decimal)
            if x is not None:
                return self.kind, x
            self.kind, self.widened = "text", True  # only text holds both types
            return self.kind, None
        self.kind = csv_type(strings)
        if self.kind == "text" and self.comma_ok:
            self.kind, self.decimal = "number", ","
        if self.kind in (None, "text"):
            return self.kind, None
        return self.kind, to_float(strings, self.kind, self.decimal)
