"""Tabular files as they come (CSV, Parquet): names, types, text categories, missing values.

``Preprocessing.fit(path, target)`` learns in one streaming pass over a file what turns
its rows into network inputs, and that travels inside the saved model (plain values as
JSON, no pickle):

- the *schema*: each column's type (number, bool, date/time or text; ``model.data.columns``),
  decided over the whole file, not from its first rows, and then enforced on every file
  the model reads;
- number, bool and date/time columns: missing values (empty, NA, NaN, NULL, ...) imputed
  with the column's training mean, then standardized with its mean and standard
  deviation (``scale``); bools as 1/0, dates and times as seconds since 1970 (UTC). With
  ``numeric_encoding="ple"``, number and date/time columns are instead encoded piecewise
  linearly over quantile bins of their training values (``ple_encode``: one input per bin,
  Gorishniy et al., NeurIPS 2022), the bins' ``edges`` saved with the column;
- text columns (``category_encoding``): one-hot encoded by default ("onehot"), a missing
  value being a category of its own. A column with more than ``max_categories`` distinct
  values keeps its ``max_categories - 1`` most frequent ones and groups the rest as one
  ``<infrequent>`` category, as scikit-learn's ``OneHotEncoder(max_categories=...)`` does.
  A value not seen in training is counted and encodes as ``<infrequent>`` where the column
  has one, as all zeros otherwise. With "embedding", each text column is instead one input
  holding an integer category code (as float32, not standardized), for a network that
  looks it up in a learned table (``MLP(..., embeddings=prep.embeddings)``): every value
  seen at least ``MIN_FREQUENCY`` times gets a code 1..n-1 (by decreasing frequency, ties
  by value), rarer values and values not seen in training code 0 (the unseen ones
  counted), with no ``max_categories`` cap. "auto": one-hot for a column of at most
  ``max_categories`` values, codes for one of more;
- identifiers, text columns with more than ``max_categories`` values that are nearly all
  distinct (at least ``IDENTIFIER_SHARE`` of the rows that have one), and columns with no
  value at all are left out and reported (``keep_identifiers=True`` keeps identifiers,
  encoded as above);
- the target: numbers (regression) or classes (text, True/False, or numbers with
  ``classify``), mapped to 0..K-1 and back; rows whose target is missing are left out and
  counted.

``Preprocessing.transform`` applies it to a batch; ``batches`` streams ready float32
chunks of any file with the same columns; ``write_npy`` writes a whole file as ``.npy``
inputs and targets for ``MLP.fit`` to stream.

Files are read with pyarrow's streaming readers (``pyarrow.csv.open_csv`` with every
column as text and quoted line breaks allowed, ``pyarrow.parquet.ParquetFile.iter_batches``):
quoting, multi-threaded parsing, and memory bounded by one block of rows whatever the
file's size. A problem in a CSV (a ragged row, a value that is not of its column's type) is
located by line and column with Python's csv module, which only runs once a read failed.
A CSV may come compressed (``name.csv.gz``, ``name.csv.bz2``): pyarrow's readers and
``open_csv_text`` decompress it by its suffix.
"""

import bz2
import contextlib
import contextvars
import csv
import gzip
import json
import os
import re
import zlib

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ..training import progress
from .sources import NpyWriter
from .validation import is_number

#: Field values read as missing.
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "n/a"]
#: The category a missing text value gets.
MISSING = "<missing>"
#: The category of a text column's rare values (and of values unseen in training).
INFREQUENT = "<infrequent>"
CSV_EXTENSIONS = (".csv",)
#: The compressions a CSV may come in, by the suffix after ``.csv``: the module that opens
#: it (pyarrow's CSV reader decompresses the same suffixes itself).
CSV_COMPRESSIONS = {".gz": gzip, ".bz2": bz2}
#: What reading a damaged compressed file raises (gzip: BadGzipFile, an OSError, or
#: zlib.error; bz2: OSError; both EOFError for a file cut short).
DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error)
PARQUET_EXTENSIONS = (".parquet", ".pq")
#: The largest network input or target (they are float32).
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Bytes of CSV parsed per block (pyarrow's block_size): bounds the memory of a read.
BLOCK_BYTES = 1 << 22
#: Rows per Parquet batch.
PARQUET_ROWS = 1 << 16
#: Distinct values counted per text column before giving up on the exact number.
_COUNT_LIMIT = 100_000
#: A text column with more than ``max_categories`` values, distinct in at least this share
#: of the rows that have a value, is an identifier (a name, a code per row).
IDENTIFIER_SHARE = 0.5
#: A text column is "numbers with a typo" when at most this many distinct values, and at
#: most ``TYPO_SHARE`` of its values, are not numbers: an error, not a category.
TYPO_VALUES = 3
TYPO_SHARE = 0.05
#: How number and date/time columns become inputs (``numeric_encoding``): standardized,
#: or piecewise-linear encoded over quantile bins (``ple_encode``).
NUMERIC_ENCODINGS = ("standard", "ple")
#: How text columns become inputs (``category_encoding``): one-hot, one category code each
#: (for a learned embedding), or one-hot up to ``max_categories`` values and codes beyond.
CATEGORY_ENCODINGS = ("onehot", "embedding", "auto")
#: A text value seen fewer times than this in training gets code 0 in a code column (as
#: values not seen at all): an embedding row trained on one row is noise.
MIN_FREQUENCY = 2
#: Quantile bins per column of the piecewise-linear encoding, by default (``n_bins``).
N_BINS = 48
#: Values per column the bins' quantiles are computed from: all of a column's values up to
#: this many (exact quantiles), else a uniform sample of this many (reservoir sampling,
#: seeded): a quantile's rank is then off by 0.5 / sqrt(QUANTILE_SAMPLE) (0.001) at most
#: one standard deviation, a twentieth of a bin's width at 48 bins.
QUANTILE_SAMPLE = 1 << 18


class TableError(InvalidValueError):
    """A file that cannot be read as a table, or does not fit its preprocessing."""


def is_table(path):
    """True for a path (str or os.PathLike) ending in .csv (.csv.gz, .csv.bz2) or
    .parquet."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    return (_is_csv(path)
            or os.path.splitext(os.fspath(path))[1].lower() in PARQUET_EXTENSIONS)


def _shown(label):
    """A class label as a summary lists it: as it is, or quoted (Python's repr) when it is
    empty or holds a comma, a quote, a line break or surrounding spaces, which would
    make the list read as other labels."""
    text = str(label)
    if text and text == text.strip() and not any(c in text for c in ",'\"\n\r"):
        return text
    return repr(text)


def _compression(path):
    """The module of a compressed CSV's suffix (``CSV_COMPRESSIONS``), or None."""
    stem, ext = os.path.splitext(os.fspath(path).lower())
    if ext in CSV_COMPRESSIONS and os.path.splitext(stem)[1] in CSV_EXTENSIONS:
        return CSV_COMPRESSIONS[ext]
    return None


def open_csv_text(path, errors="replace"):
    """A CSV file as text for Python's csv module: UTF-8 (a byte-order mark skipped),
    ``errors`` for bytes that are not, decompressed when its name says it is compressed."""
    module = _compression(path)
    if module is None:
        return open(path, newline="", encoding="utf-8-sig", errors=errors)
    return module.open(path, "rt", newline="", encoding="utf-8-sig", errors=errors)


def _open_csv_bytes(path):
    module = _compression(path)
    return open(path, "rb") if module is None else module.open(path, "rb")


def arrow_csv_input(path):
    """What ``pyarrow.csv.open_csv`` reads for a CSV path: the path itself, or for a
    compressed one a decompressing stream (pyarrow guesses compression from a lower-case
    suffix only: ``.CSV.GZ`` would be parsed as compressed bytes)."""
    module = _compression(path)
    if module is None:
        return path
    return _pyarrow().input_stream(os.fspath(path), compression=module.__name__)


def _coltypes():
    """``model.data.columns``, imported on first use: it imports pyarrow (90 ms), which a
    process that never reads a table need not load (the README's first command)."""
    from . import columns
    return columns


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise ImportError("reading CSV and Parquet files needs pyarrow: pip install pyarrow")
    import pyarrow
    return pyarrow


# ----------------------------------------------------------------------------- reading

def _is_csv(path):
    return (os.path.splitext(os.fspath(path))[1].lower() in CSV_EXTENSIONS
            or _compression(path) is not None)


#: Delimiters a CSV's header is searched for when none is given: comma first; a header
#: with no comma outside quotes but one of the others uses the most frequent of them.
DELIMITERS = (",", ";", "\t", "|")

_given_delimiter = contextvars.ContextVar("delimiter", default=None)


def check_delimiter(delimiter, what="--delimiter"):
    """``delimiter`` if it is one character other than a quote or a line break."""
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise InvalidValueError("%s must be one character, got %r" % (what, delimiter))
    if not delimiter.isascii():  # pyarrow's reader takes one byte
        raise InvalidValueError("%s must be an ASCII character, got %r" % (what, delimiter))
    if delimiter in "\"\r\n":
        raise InvalidValueError("%s cannot be a quote or a line break, got %r" % (what, delimiter))
    return delimiter


@contextlib.contextmanager
def csv_delimiter(delimiter):
    """Read every CSV in the block with ``delimiter`` (None: found in each file's header,
    ``delimiter_of``); the command line's ``--delimiter``."""
    token = _given_delimiter.set(None if delimiter is None else check_delimiter(delimiter))
    try:
        yield
    finally:
        _given_delimiter.reset(token)


def delimiter_of(path):
    """The delimiter a CSV is read with: the one given (``csv_delimiter``), else the one of
    ``DELIMITERS`` its header line holds outside quotes (a comma when there is a comma or
    none of them)."""
    given = _given_delimiter.get()
    if given is not None:
        return given
    try:
        with open_csv_text(path) as f:
            header = f.readline(1 << 20)
    except DECOMPRESSION_ERRORS:  # OSError; the reading that follows says what is wrong
        return ","
    outside = re.sub(r'"[^"]*"', "", header)  # names in quotes may hold any character
    counts = {d: outside.count(d) for d in DELIMITERS}
    if counts[","] or not any(counts.values()):
        return ","
    return max(DELIMITERS[1:], key=counts.get)


def _csv_reader(f, path):
    """Python's csv reader with the delimiter pyarrow reads ``path`` with."""
    return csv.reader(f, delimiter=delimiter_of(path))


def _parse_options(path):
    # Quoted fields may hold line breaks (at no measurable cost on a 34 MB file).
    return _pyarrow().csv.ParseOptions(newlines_in_values=True, delimiter=delimiter_of(path))


def column_names(path):
    """The column names of a table file, in order; a clear error for an unreadable one."""
    return list(schema(path).names)


def schema(path):
    """The pyarrow schema of a table file as read here (a CSV's columns all as text)."""
    pa = _pyarrow()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TableError("%s: %s" % (path, "a folder, not a file" if os.path.isdir(path)
                                     else "no such file"))
    if not is_table(path):
        raise TableError("%s is not a .csv or .parquet table (a table file's name ends in %s)"
                         % (path, ", ".join(CSV_EXTENSIONS + tuple(
                             ".csv" + ext for ext in CSV_COMPRESSIONS) + PARQUET_EXTENSIONS)))
    if _is_csv(path):
        if os.path.getsize(path) == 0:
            raise TableError("%s: the file is empty (no header line)" % path)
        if not check_csv_bytes(path):  # a compressed file of nothing
            raise TableError("%s: the file is empty (no header line)" % path)
        try:
            reader = pa.csv.open_csv(arrow_csv_input(path),
                                     read_options=pa.csv.ReadOptions(block_size=1 << 16),
                                     parse_options=_parse_options(path),
                                     convert_options=_convert_options(None))
            names = reader.schema.names
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:  # OSError: a damaged
            raise _csv_error(path, exc) from None                        # compressed file
        return pa.schema([(name, pa.string()) for name in names])
    try:
        return pa.parquet.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError("%s: not a readable Parquet file (%s)" % (path, exc)) from None


_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
         (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))


#: The first bytes of compressed files a .csv may turn out to be.
_COMPRESSED = ((b"\x1f\x8b", "gzip", ".gz"), (b"PK\x03\x04", "zip", None),
               (b"BZh", "bzip2", ".bz2"), (b"\xfd7zXZ\x00", "xz", None),
               (b"\x28\xb5\x2f\xfd", "zstd", None))


def check_csv_bytes(path, prefix=""):
    """A ``TableError`` for a .csv that is not UTF-8 text as a whole: UTF-16/UTF-32 (a
    byte-order mark, or NUL bytes in its first block), or a Parquet file named .csv.
    Returns that first block (64 KB, decompressed for a compressed CSV)."""
    try:
        with _open_csv_bytes(path) as f:
            head = f.read(1 << 16)
    except DECOMPRESSION_ERRORS as exc:  # a damaged compressed file
        raise TableError("%s%s: not a readable compressed file (%s)"
                         % (prefix, path, exc)) from None
    if head.startswith(b"PAR1"):
        raise TableError("%s%s is a Parquet file named .csv: rename it to .parquet"
                         % (prefix, path))
    for magic, kind, suffix in _COMPRESSED:
        if head.startswith(magic):
            raise TableError("%s%s is %s-compressed, not CSV text: %s"
                             % (prefix, path, kind, "decompress it first" if suffix is None
                                else "name it %s%s (read as it is) or decompress it"
                                % (os.fspath(path), suffix)))
    marked = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    name = marked or ("UTF-16" if b"\x00" in head else None)
    if name and marked is None and _compression(path) is not None:
        raise TableError("%s%s holds NUL bytes once decompressed: UTF-16 text (save it as "
                         "UTF-8) or a damaged compressed file" % (prefix, path))
    if name:
        raise TableError("%s%s is %s text: save it as UTF-8" % (prefix, path, name))
    return head


def _convert_options(columns):
    pa = _pyarrow()
    types = {name: pa.string() for name in columns or []}
    return pa.csv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True,
                                 include_columns=columns, column_types=types)


def read_batches(path, columns=None):
    """The file's rows as a stream of pyarrow RecordBatches of ``columns`` (all if None); a
    CSV's columns are strings, to be typed by ``model.data.columns``."""
    pa = _pyarrow()
    path = os.fspath(path)
    if not is_table(path):
        schema(path)  # the error saying it is not a table
    if _is_csv(path):
        columns = columns if columns is not None else column_names(path)
        try:
            reader = pa.csv.open_csv(arrow_csv_input(path), read_options=pa.csv.ReadOptions(
                block_size=BLOCK_BYTES), parse_options=_parse_options(path),
                convert_options=_convert_options(columns))
            for batch in reader:
                yield batch
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
            raise _csv_error(path, exc, columns) from None
        return
    try:
        for batch in pa.parquet.ParquetFile(path).iter_batches(batch_size=PARQUET_ROWS,
                                                               columns=columns):
            yield batch
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError("%s: not a readable Parquet file (%s)" % (path, exc)) from None


def _csv_error(path, exc, columns=None):
    """A one-line ``TableError`` naming the file and line of what pyarrow refused (and the
    column, for text that is not UTF-8; ``columns``: those read, None for all)."""
    message = str(exc).splitlines()[0]
    if "Empty CSV file" in message:
        return TableError("%s: the file is empty (no header line)" % path)
    if isinstance(exc, OSError):  # a compressed file damaged on the way: its rows past the
        # damage are not rows of the file, so no line is named
        return TableError("%s: not a readable compressed file (%s)" % (path, message))
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in message or "UTF-8" in message:
        return _not_utf8(path, columns) or TableError(
            "%s: not UTF-8 text (%s): save it as UTF-8" % (path, message))
    try:
        with open_csv_text(path) as f:
            rows = _csv_reader(f, path)
            header = next(rows, [])
            for row in rows:
                if row and len(row) != len(header):
                    return TableError("%s: line %d: expected %d fields (as the header), got %d"
                                      % (path, rows.line_num, len(header), len(row)))
    except DECOMPRESSION_ERRORS as exc:  # a compressed file damaged past its first block
        return TableError("%s: not a readable compressed file (%s; %s)" % (path, exc, message))
    return TableError("%s: %s" % (path, message))


def not_utf8_field(field):
    """The raw bytes of a field read with ``errors="surrogateescape"`` when they are not
    UTF-8 text, else None."""
    try:
        field.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return field.encode("utf-8", "surrogateescape")


def _not_utf8(path, columns=None):
    """A ``TableError`` naming the line and column of a CSV's first field that is not UTF-8
    (in ``columns``, or any), or None when there is none."""
    with open_csv_text(path, "surrogateescape") as f:
        rows = _csv_reader(f, path)
        header = None
        try:
            for row in rows:
                for k, field in enumerate(row):
                    raw = not_utf8_field(field)
                    if raw is None:
                        continue
                    if header is None:
                        where = "line 1 (the header), column %d" % (k + 1)
                    elif k < len(header) and (columns is None or header[k] in columns):
                        where = "line %d, column %r" % (rows.line_num, header[k])
                    else:
                        continue
                    return TableError("%s: %s: %r is not UTF-8 text: save the file as UTF-8"
                                      % (path, where, raw))
                if header is None:
                    header = row
        except csv.Error:
            return None
    return None


def _line_of_row(path, row):
    """The line of a CSV on which data row ``row`` (0-based) ends, or None."""
    with open_csv_text(path) as f:
        rows = _csv_reader(f, path)
        next(rows, None)
        for i, _ in enumerate(rows):
            if i == row:
                return rows.line_num
    return None


def _where(path, row):
    """'line N' of a CSV, 'row N' of a Parquet file, for a 0-based data row."""
    if _is_csv(path):
        line = _line_of_row(path, row)
        if line is not None:
            return "line %d" % line
    return "row %d" % (row + 1)


# ----------------------------------------------------------------------------- preprocessing

class Preprocessing:
    """What turns a table's rows into network inputs and targets; see the module docstring.

    Attributes (all plain values, saved with the model): ``target`` (column name),
    ``task`` ("regression" or "classification"), ``target_type``, ``columns`` (the feature
    columns in file order, each ``{"name", "kind": "numeric"|"text"|"code", "type", ...}``
    with ``mean``/``scale``; or, one-hot, ``categories`` and ``infrequent``; or, a code
    input, ``categories`` (``categories[i]`` codes as i + 1) and ``rare`` (the training
    values coded 0)), ``classes`` (the labels of a classifier, as read), ``scale``,
    ``feature_names`` (one per input: a numeric column's name, ``column#binT`` per bin of a
    piecewise-linear one, ``column=value`` per category, a code column's name),
    ``numeric_encoding`` ("standard" or "ple"; files saved before it: "standard") and
    ``n_bins`` (None for "standard"), ``category_encoding`` ("onehot", "embedding" or
    "auto"; files saved before it: "onehot"), and what the fit saw: ``rows``,
    ``dropped_rows``, ``imputed``, ``left_out`` (``{name: why}``), ``grouped``
    (``{column: values grouped as <infrequent>}``). ``embeddings``: the code inputs.
    """

    def __init__(self, spec):
        self.__dict__.update(spec)
        for column in self.columns:  # files of numba-dense 0.1 have no "type"
            column.setdefault("type", "number" if column["kind"] == "numeric" else "text")
        for key, empty in (("left_out", {}), ("grouped", {}), ("target_type", None),
                           ("target_decimal", None), ("numeric_encoding", "standard"),
                           ("n_bins", None), ("category_encoding", "onehot")):
            self.__dict__.setdefault(key, empty)

    # ---- fitting

    @classmethod
    def fit(cls, path, target, features=None, drop=None, max_categories=100, scale=True,
            classify=None, keep_identifiers=False, progress=False,
            numeric_encoding="standard", n_bins=N_BINS, category_encoding="onehot",
            categorical=None):
        """Learn the preprocessing of ``path`` (.csv or .parquet) in one streaming pass (a
        second one only for a CSV column that turned out to be text after rows of numbers).

        ``target``: the target column's name. ``features`` (names) or ``drop`` (names to
        leave out) choose the feature columns; by default every column but the target.
        ``max_categories`` (>= 2): one-hot columns per text column, its rarest values
        grouped beyond that. ``classify``: None (text and True/False targets are classes,
        numbers a regression), True or False. ``keep_identifiers``: encode identifier
        columns (one-hot grouped, or codes) instead of leaving them out.
        ``category_encoding``: "onehot" (text columns one-hot, as above), "embedding" (each
        text column one input of integer category codes, for ``MLP(...,
        embeddings=prep.embeddings)``: the values seen at least ``MIN_FREQUENCY`` times code
        1..n-1 by decreasing frequency (ties by value), rarer and unseen values 0, every
        value kept whatever ``max_categories``) or "auto" (one-hot for a column of at most
        ``max_categories`` values, codes for one of more). A missing text value is a
        category of its own either way. ``categorical`` (names, or one string "a,b"): feature
        columns read as categories whatever their type, each value as the file writes it
        (a number code such as an occupation's ``534``, which as a number means nothing),
        encoded as text columns are.
        ``numeric_encoding``: "standard" (number, True/False and date/time columns as one
        standardized input each) or "ple": number and date/time columns as the
        piecewise-linear encoding (``ple_encode``) over at most ``n_bins`` (>= 2) quantile
        bins of their training values, one input per bin, named ``column#bin1``,
        ``column#bin2``, ...; fewer bins where the column has fewer distinct values, and a
        constant column stays one standardized input (True/False columns stay 1/0
        standardized). Quantiles are exact up to ``QUANTILE_SAMPLE`` values per column,
        from a seeded uniform sample of that many beyond. A missing value is imputed with
        the training mean, then encoded.
        Raises ``TableError`` (a ValueError) with the file, and the line and column where
        there is one.
        """
        path = os.fspath(path)
        if isinstance(max_categories, bool) or not isinstance(max_categories, (int, np.integer)) \
                or max_categories < 2:
            raise InvalidValueError("max_categories must be an integer >= 2, got %r"
                                    % (max_categories,))
        max_categories = int(max_categories)
        if numeric_encoding not in NUMERIC_ENCODINGS:
            raise InvalidValueError("numeric_encoding must be one of %s, got %r"
                                    % (", ".join(map(repr, NUMERIC_ENCODINGS)),
                                       numeric_encoding))
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
            raise InvalidValueError("n_bins must be an integer >= 2, got %r" % (n_bins,))
        if not isinstance(category_encoding, str) or category_encoding not in CATEGORY_ENCODINGS:
            raise InvalidValueError("category_encoding must be one of %s, got %r"
                                    % (", ".join(map(repr, CATEGORY_ENCODINGS)),
                                       category_encoding))
        ple = numeric_encoding == "ple"
        n_bins = int(n_bins) if ple else None
        file_schema = schema(path)
        names = file_schema.names
        if target not in names:
            raise TableError("%s has no column %r (columns: %s)"
                             % (path, target, ", ".join(names)))
        check_unique(path, names)
        chosen = _choose_features(path, names, target, features, drop)
        categorical = _categorical(path, chosen, target, categorical)
        stats = {}
        comma = _is_csv(path) and delimiter_of(path) != ","
        for name in chosen + [target]:
            try:
                kind = None if _is_csv(path) else _coltypes().parquet_type(
                    name, file_schema.field(name).type)
                stats[name] = _ColumnStats("text" if name in categorical else kind,
                                           decimal_comma=comma,
                                           quantiles=ple and name not in categorical + [target],
                                           categorical=name in categorical)
            except _coltypes().ColumnTypeError as exc:
                raise TableError("%s: %s" % (path, exc)) from None
        rows = dropped = first_row = 0
        bar = _bar(path, progress)
        for batch in read_batches(path, chosen + [target]):
            keep = _has_target(batch.column(target))
            kept = batch.filter(keep)
            dropped += batch.num_rows - kept.num_rows
            rows += kept.num_rows
            for name in chosen:
                stats[name].add(kept.column(name))
            stats[target].add(kept.column(target), keep_values=bool(classify))
            for name in chosen + [target]:
                if stats[name].inf_row is not None:
                    r, value = stats[name].inf_row
                    kept_rows = _coltypes().true_rows(keep)
                    raise _inf_error(path, _where(path, first_row + int(kept_rows[r])), name,
                                     value)
            first_row += batch.num_rows
            bar.update(batch.num_rows)
        bar.close()
        if rows == 0 and dropped == 0:
            raise TableError("%s has a header line but no rows" % path)
        if rows == 0:
            raise TableError("%s has no rows with a value in %r (%d rows read)"
                             % (path, target, dropped))
        widened = [name for name in chosen + [target] if stats[name].widened]
        if widened:
            _recount(path, target, {name: stats[name] for name in widened})
        for name in chosen:
            if name not in categorical:  # numbers there are categories, not a typo
                stats[name].check_typo(path, name)
        if classify is not False:  # a text target: a typo in numbers is not a class
            stats[target].check_typo(path, target, target=True)
        columns, feature_names, imputed, left_out, grouped = [], [], {}, {}, {}
        for name in chosen:
            stats[name].check_range(path, name)
            column = stats[name].describe(name, max_categories, n_bins, category_encoding)
            if name in categorical:  # values read as integral_text (transform does too)
                column["categorical"] = True
            why = _left_out(stats[name], rows, max_categories, keep_identifiers)
            if why:
                left_out[name] = why
                continue
            columns.append(column)
            if column.get("encoding") == "ple":
                feature_names += ple_names(name, len(column["edges"]) - 1)
            elif column["kind"] in ("numeric", "code"):
                feature_names.append(name)
            else:
                feature_names += ["%s=%s" % (name, c) for c in column["categories"]]
                if column.get("infrequent"):
                    feature_names.append("%s=%s" % (name, INFREQUENT))
                    grouped[name] = column["grouped"]
            if stats[name].missing:
                imputed[name] = stats[name].missing
        if not columns:
            raise TableError("%s: no usable feature column is left (%s)" % (
                path, "; ".join("%s: %s" % kv for kv in left_out.items())))
        task, classes = _task(path, target, stats[target], classify)
        if not scale:
            for column in columns:
                if column["kind"] == "numeric":
                    column["scale"] = 1.0
        return cls(dict(target=target, task=task, target_type=stats[target].kind,
                        target_decimal=stats[target].decimal,
                        columns=columns, classes=classes, scale=bool(scale),
                        feature_names=feature_names, rows=rows, dropped_rows=dropped,
                        imputed=imputed, left_out=left_out, grouped=grouped,
                        source=os.path.basename(path), numeric_encoding=numeric_encoding,
                        n_bins=n_bins, category_encoding=category_encoding))

    @property
    def n_features(self):
        """The width of the inputs it makes."""
        return len(self.feature_names)

    @property
    def embeddings(self):
        """``{input index: n_categories}`` of the inputs that hold category codes (``{}``
        when none): a network reading them is ``MLP(sizes, embeddings=prep.embeddings)``."""
        found, at = {}, 0
        if not any(column["kind"] == "code" for column in self.columns):
            return found
        for column in self.columns:
            if column["kind"] == "code":
                found[at] = len(column["categories"]) + 1
            at += column_width(column)
        return found

    @property
    def n_classes(self):
        return len(self.classes) if self.classes is not None else 0

    def summary(self):
        """Lines saying what the fit decided, for the command line: the columns of each type,
        grouped categories, columns left out, rows left out, the target."""
        by_type = {}
        for c in self.columns:
            by_type.setdefault(c["type"], []).append(c)
        words = {"number": "numbers", "bool": "True/False (as 1/0)",
                 "datetime": "dates/times (as seconds)"}
        lines = ["read %s: %d rows, %d columns -> %d inputs"
                 % (self.source, self.rows, len(self.columns), self.n_features)]
        for kind in ("number", "bool", "datetime"):
            plain = [c for c in by_type.get(kind, []) if c.get("encoding") != "ple"]
            encoded = [c for c in by_type.get(kind, []) if c.get("encoding") == "ple"]
            if plain:
                lines.append("  %s%s: %s" % (words[kind], ", standardized" if self.scale else "",
                                             ", ".join(c["name"] for c in plain)))
            if encoded:
                lines.append("  %s, piecewise-linear over quantile bins (at most %s): %s"
                             % (words[kind], self.n_bins, ", ".join(
                                 "%s (%d)" % (c["name"], len(c["edges"]) - 1)
                                 for c in encoded)))
        onehot = [c for c in by_type.get("text", []) if c["kind"] == "text"]
        codes = [c for c in by_type.get("text", []) if c["kind"] == "code"]
        if onehot:
            lines.append("  text, one-hot: %s" % ", ".join(
                "%s (%d%s)" % (c["name"], len(c["categories"]) + bool(c.get("infrequent")),
                               ", %s rare values grouped as %s" % (c["grouped"], INFREQUENT)
                               if c.get("infrequent") else "")
                for c in onehot))
        if codes:
            lines.append("  text, learned embeddings (one category code each; values seen "
                         "fewer than %d times, and unseen ones, as code 0): %s"
                         % (MIN_FREQUENCY, ", ".join(
                             "%s (%d categor%s%s)" % (
                                 c["name"], len(c["categories"]) + 1,
                                 "ies" if c["categories"] else "y",
                                 ", %d rare value%s" % (len(c["rare"]),
                                                        "s" * (len(c["rare"]) != 1))
                                 if c["rare"] else "")
                             for c in codes)))
        for name, why in self.left_out.items():
            lines.append("  left out %s: %s" % (name, why))
        if self.imputed:
            imputed = ", ".join("%s %d" % kv for kv in sorted(self.imputed.items()))
            lines.append("  missing values imputed (numbers: the mean; text: a "
                         "category of its own): %s" % imputed)
        if self.dropped_rows:
            lines.append("left out %d rows whose target %r is missing"
                         % (self.dropped_rows, self.target))
        if self.task == "classification":
            lines.append("target %r: %d classes (%s)" % (
                self.target, self.n_classes, ", ".join(map(_shown, self.classes[:10]))
                + (", ..." if self.n_classes > 10 else "")))
        return lines

    # ---- applying

    def transform(self, batch, with_target=True, counts=None, path="the table",
                  first_row=0):
        """(X (n, n_features) float32, y) of a RecordBatch holding the feature columns (and the
        target with ``with_target``). y: float32 values (regression) or int64 class
        indices; rows without a target are left out. ``counts`` (a dict) adds up the rows
        read ("rows"), those left out ("dropped") and the values not seen in training
        ("unseen"). ``path`` and
        ``first_row`` (the batch's first data row in the file) word the errors."""
        rows = None  # the file rows of a batch whose rows without a target were left out
        if with_target:
            keep = _has_target(batch.column(self.target))
            kept = batch.filter(keep)
            if counts is not None:
                counts["dropped"] = counts.get("dropped", 0) + batch.num_rows - kept.num_rows
            if kept.num_rows != batch.num_rows:
                rows = _coltypes().true_rows(keep)
            batch = kept
        n = batch.num_rows
        if counts is not None:
            counts["rows"] = counts.get("rows", 0) + n
        row_of = _row_mapper(first_row, rows)
        X = np.zeros((n, self.n_features), np.float32)
        at = 0
        for column in self.columns:
            values = batch.column(column["name"])
            if column["kind"] == "numeric":
                x = _floats_at(values, column, path, row_of)
                infinite = np.isinf(x)
                if infinite.any():
                    r = int(np.flatnonzero(infinite)[0])
                    raise _inf_error(path, _where(path, row_of(r)), column["name"], float(x[r]))
                x[np.isnan(x)] = column["mean"]
                if column.get("encoding") == "ple":
                    width = len(column["edges"]) - 1
                    X[:, at:at + width] = _encoded(x, column, path, row_of)
                    at += width
                    continue
                X[:, at] = _standardized(x, column, path, row_of)
                at += 1
                continue
            categories = column["categories"]
            if column.get("categorical"):
                values = integral_text(_coltypes().to_text(values))
            index = _category_index(values, categories)
            unseen = index < 0
            if column["kind"] == "code":  # code i + 1; rare and unseen values code 0
                X[:, at] = index + 1
                if counts is not None and unseen.any():
                    unseen &= _category_index(values, column["rare"]) < 0
                    _count_unseen(counts, column["name"], unseen)
                at += 1
                continue
            if column.get("infrequent"):  # rare and unseen values: the <infrequent> input
                index[unseen] = len(categories)
                if counts is not None and unseen.any():  # unseen: not even a rare value
                    unseen &= _category_index(values, column["rare"]) < 0
            seen = index >= 0
            X[np.flatnonzero(seen), at + index[seen]] = 1
            if counts is not None and unseen.any():
                _count_unseen(counts, column["name"], unseen)
            at += len(categories) + bool(column.get("infrequent"))
        if not with_target:
            return X, None
        y = batch.column(self.target)
        if self.task == "regression":
            column = {"name": self.target, "type": self.target_type or "number",
                      "decimal": self.target_decimal}
            return X, _target_values(_floats_at(y, column, path, row_of), self.target, path,
                                     row_of)
        index = _class_index(y, self.classes, self.target_type, self.target_decimal)
        if (index < 0).any():
            r = int(np.flatnonzero(index < 0)[0])
            bad = y.take(_pyarrow().array([r])).to_pylist()[0]
            classes = ", ".join(map(str, self.classes[:20])) + (
                ", ..." if len(self.classes) > 20 else "")
            raise TableError("%s: %s, column %r: the target %r is not one of the %d classes "
                             "seen in training (%s)" % (os.fspath(path), _where(path, row_of(r)),
                                                        self.target, bad, len(self.classes),
                                                        classes))
        return X, index.astype(np.int64)

    def batches(self, path, with_target=True, counts=None, progress=False):
        """(X, y) chunks of ``path`` (a file with the same columns), ready for the network."""
        names = column_names(path)
        wanted = [c["name"] for c in self.columns] + ([self.target] if with_target else [])
        missing = [name for name in wanted if name not in names]
        if missing:
            raise TableError("%s has no column %s, which the model was trained with (it has: "
                             "%s)" % (os.fspath(path), ", ".join(map(repr, missing)),
                                      ", ".join(names)))
        check_unique(os.fspath(path), names)
        if not _is_csv(path):
            self._check_types(path, with_target)
        bar = _bar(path, progress)
        first_row = 0
        for batch in read_batches(path, wanted):
            bar.update(batch.num_rows)
            yield self.transform(batch, with_target, counts, path, first_row)
            first_row += batch.num_rows
        bar.close()
        if first_row == 0:  # (the command line cannot write a 0-row table of labels)
            raise TableError("%s has a header line but no rows: there is nothing to %s"
                             % (os.fspath(path), "score" if with_target else "predict"))

    def _check_types(self, path, with_target):
        """A Parquet column the model reads that holds no single value per row (a list, a
        struct, ...) is an error naming it; columns the model does not read are not read."""
        file_schema = schema(path)
        wanted = [(c["name"], c["type"]) for c in self.columns]
        if with_target:
            wanted.append((self.target, self.target_type or (
                "number" if self.task == "regression" else "class")))
        for name, kind in wanted:
            arrow_type = file_schema.field(name).type
            try:
                _coltypes().parquet_type(name, arrow_type)
            except _coltypes().ColumnTypeError:
                raise TableError("%s: column %r has type %s, which cannot be read as the %s "
                                 "values the model was trained with"
                                 % (os.fspath(path), name, arrow_type,
                                    "date/time" if kind == "datetime" else kind)) from None

    def labels(self, index):
        """Class indices back to the labels as read."""
        return np.asarray(self.classes, dtype=object if isinstance(self.classes[0], str)
                          else None)[np.asarray(index)]

    def write_npy(self, path, x_path, y_path, progress=False):
        """Write the whole (training) file as ``x_path`` (rows, n_features) float32 and
        ``y_path`` ((rows, 1) float32 values or (rows,) int64 classes); returns both opened
        as read-only memmaps. The row count is the fit's, so ``path`` must be the file it
        was fit on. Written with plain file writes (NumPy's header, then the rows block by
        block), so memory stays at one block whatever the file's size."""
        regression = self.task == "regression"
        writers = [NpyWriter(x_path, np.float32, self.n_features, self.rows),
                   NpyWriter(y_path, np.float32 if regression else np.int64,
                             1 if regression else None, self.rows)]
        try:
            at = 0
            for Xc, yc in self.batches(path, progress=progress):
                if at + len(Xc) > self.rows:
                    break
                writers[0].append(Xc)
                writers[1].append(yc.reshape(len(yc), -1) if regression else yc)
                at += len(Xc)
            if at != self.rows:
                raise TableError("%s changed while it was read: the fit saw %d rows"
                                 % (os.fspath(path), self.rows))
            for w in writers:
                w.commit()
        except BaseException:
            for w in writers:
                w.discard()
            raise
        return np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")

    # ---- saving

    def to_json(self):
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text):
        """The preprocessing of ``to_json``'s text; a ValueError for column names that are
        missing or repeated (a file could not be read by them)."""
        spec = json.loads(text)
        names = []
        for i, column in enumerate(spec.get("columns") or []):
            name = column.get("name") if isinstance(column, dict) else None
            if not isinstance(name, str) or not name:
                raise InvalidValueError("columns[%d] has no column name" % i)
            names.append(name)
        target = spec.get("target")
        if not isinstance(target, str) or not target:
            raise InvalidValueError("the target has no column name")
        twice = sorted({n for n in names + [target] if (names + [target]).count(n) > 1})
        if twice:
            raise InvalidValueError("column name%s %s used more than once (the target and feature "
                                    "columns must have distinct names)"
                                    % ("s" if len(twice) > 1 else "", ", ".join(map(repr, twice))))
        return cls(spec)


def column_width(column):
    """The number of inputs a column of ``Preprocessing.columns`` makes."""
    if column["kind"] == "numeric":
        return len(column["edges"]) - 1 if column.get("encoding") == "ple" else 1
    if column["kind"] == "text":
        return len(column["categories"]) + bool(column.get("infrequent"))
    return 1  # a code column


def _count_unseen(counts, name, unseen):
    """Add a column's values not seen in training (a boolean mask) to ``counts``."""
    if unseen.any():
        bucket = counts.setdefault("unseen", {})
        bucket[name] = bucket.get(name, 0) + int(unseen.sum())


def _row_mapper(first_row, rows):
    """Batch row -> 0-based data row of the file (``rows``: the batch's kept rows, or None)."""
    if rows is None:
        return lambda r: first_row + r
    return lambda r: first_row + int(rows[r])


def _floats_at(values, column, path, row_of):
    """``columns.to_float`` of a column, its ParseError worded with file, line and column."""
    try:
        return _coltypes().to_float(values, column["type"], column.get("decimal"))
    except _coltypes().ParseError as exc:
        held = {"datetime": "date/time values", "number written with a decimal comma":
                "numbers written with decimal commas"}.get(exc.kind, exc.kind + " values")
        raise TableError("%s: %s, column %r: %s (the column holds %s in training)"
                         % (os.fspath(path), _where(path, row_of(exc.row)), column["name"],
                            exc, held)) from None


def _inf_error(path, where, name, value):
    return TableError("%s: %s, column %r: %s is not a usable value; write an empty field "
                      "for a missing one" % (os.fspath(path), where, name,
                                             "inf" if value > 0 else "-inf"))


def _float32_first_nonfinite(values):
    """(values as float32, the index of the first one that is not finite as float32 --
    inf, NaN, or beyond float32's range -- or None)."""
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(v32))
    return v32, (int(bad[0]) if bad.size else None)


def _standardized(x, column, path, row_of):
    """``(x - mean) / scale`` of a numeric column's (finite) values as float32; a value that
    is beyond float32's range once standardized is an error with file, line and column."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (x - column["mean"]) / column["scale"]
    z32, r = _float32_first_nonfinite(z)
    if r is not None:
        raise TableError("%s: %s, column %r: %r is out of range: standardized with the "
                         "training mean %g and scale %g it is %g, beyond float32's range "
                         "(at most %g in size)"
                         % (os.fspath(path), _where(path, row_of(r)), column["name"],
                            float(x[r]), column["mean"], column["scale"], z[r], _FLOAT32_MAX))
    return z32


def _encoded(x, column, path, row_of):
    """``ple_encode`` of a numeric column's (finite) values as float32; a value whose
    encoding is beyond float32's range (far outside the training values: the first and
    last bins are not clipped) is an error with file, line and column."""
    with np.errstate(over="ignore", invalid="ignore"):
        z32 = ple_encode(x, column["edges"]).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(z32).all(axis=1))
    if bad.size:
        r = int(bad[0])
        raise TableError("%s: %s, column %r: %r is out of range: its piecewise-linear "
                         "encoding over the training bins %g to %g is beyond float32's range "
                         "(at most %g in size)"
                         % (os.fspath(path), _where(path, row_of(r)), column["name"],
                            float(x[r]), column["edges"][0], column["edges"][-1],
                            _FLOAT32_MAX))
    return z32


def ple_names(name, n):
    """The feature names of a column's ``n`` piecewise-linear inputs."""
    return ["%s#bin%d" % (name, t + 1) for t in range(n)]


def _target_values(y, target, path, row_of):
    """A regression target's values as float32; one that is not finite (inf, or beyond
    float32's range) is an error with file, line and column."""
    y32, r = _float32_first_nonfinite(y)
    if r is not None:
        raise TableError("%s: %s, column %r: the target must be a finite number within "
                         "float32's range (at most %g in size), got %r"
                         % (os.fspath(path), _where(path, row_of(r)), target, _FLOAT32_MAX,
                            float(y[r])))
    return y32


def _has_target(y):
    """A boolean mask of the rows whose target has a value (not null, not NaN)."""
    pa = _pyarrow()
    keep = y.is_valid()
    if pa.types.is_floating(y.type):
        keep = pa.compute.and_(keep, pa.compute.invert(pa.compute.is_nan(y)))
    return keep


def check_unique(path, names):
    """A table whose header names a column twice is refused: which one is meant is a guess."""
    seen = {}
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i + 1)
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    if twice:
        named = "; ".join("%r %d times (columns %s)" % (name, len(where),
                                                        ", ".join(map(str, where)))
                          for name, where in twice.items())
        raise TableError("%s: the header names %s: rename the columns so that "
                         "each name is used once" % (path, named))


class _ColumnStats:
    """One column over the whole file: its type (``kind``; typed as it goes for a CSV), the
    running count, mean and variance of a numeric one, the value counts of a text one."""

    def __init__(self, kind=None, decimal_comma=False, quantiles=False, categorical=False):
        self.typer = _coltypes().CsvTyper(decimal_comma) if kind is None else None
        self.categorical = categorical  # named in fit's categorical: values integral_text
        # a numeric column's values (or a sample of them) for quantile bins
        self.sample = _Reservoir(QUANTILE_SAMPLE) if quantiles else None
        self.kind = kind
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.shift = None
        self.missing = 0
        self.counts = {}
        self.overflow = False  # more than _COUNT_LIMIT distinct values: counting stopped
        self.huge = None  # a value whose square overflowed the running sums
        self.inf_row = None  # (batch row, value) of the first inf of the last batch added
        self._values = set()

    @property
    def widened(self):
        """True when a CSV column turned to text after values of another type were counted."""
        return self.typer is not None and self.typer.widened

    def add(self, values, keep_values=False):
        """Count a batch's values in; ``keep_values``: remember a numeric column's distinct
        values (the classes of a numeric target)."""
        before, x = self.kind, None
        if self.typer is not None:
            self.kind, x = self.typer.add(values)
        if self.kind is None:  # nothing but missing values so far
            self.missing += len(values)
            return
        if self.kind == "text":
            if self.widened:
                return  # counted again from the start by _recount
            if before is None and self.missing:
                self.counts[MISSING] = self.counts.get(MISSING, 0) + self.missing
            self.count_text(values)
            return
        if x is None:  # a Parquet column (a CSV one was parsed by its typer)
            x = _coltypes().to_float(values, self.kind)
        infinite = np.isinf(x)
        if infinite.any():
            r = int(np.flatnonzero(infinite)[0])
            self.inf_row = (r, float(x[r]))
        finite = np.isfinite(x)
        self.missing += int((~finite).sum())
        x = x[finite]
        if x.size:
            if self.shift is None:
                self.shift = float(x[0])  # shifted sums: no cancellation for large means
            d = x - self.shift
            self.n += x.size
            self.total += float(d.sum())
            with np.errstate(over="ignore", invalid="ignore"):
                self.total_sq += float((d * d).sum())
            if self.huge is None and not np.isfinite(self.total_sq):
                self.huge = float(x[np.argmax(np.abs(d))])  # the first too large to square
            if keep_values and len(self._values) <= _COUNT_LIMIT:
                self._values.update(np.unique(x).tolist())
            if self.sample is not None:
                self.sample.add(x)

    def count_text(self, values):
        pa = _pyarrow()
        values = _coltypes().to_text(values)
        if self.categorical:
            values = integral_text(values)
        if self.kind == "text":
            self.missing += values.null_count
        if len(self.counts) > _COUNT_LIMIT:
            self.overflow = True
            return
        counts = pa.compute.value_counts(values.fill_null(_coltypes().text_scalar(MISSING)))
        for item in counts.to_pylist():
            self.counts[item["values"]] = self.counts.get(item["values"], 0) + item["counts"]

    def check_typo(self, path, name, target=False):
        """A text column of numbers but for a few values (a typo in a numeric column) is an
        error naming the first such value and its line (``target``: the target column)."""
        if self.kind != "text" or self.overflow:
            return
        strays = [v for v in self.counts if v != MISSING and not is_number(v)]
        n_strays = sum(self.counts[v] for v in strays)
        present = sum(n for v, n in self.counts.items() if v != MISSING)
        if strays and len(strays) <= TYPO_VALUES and n_strays <= TYPO_SHARE * present \
                and n_strays < present:
            strays.sort(key=lambda v: -self.counts[v])
            where = _first_line_with(path, name, strays[0]) if _is_csv(path) else None
            if target:
                raise TableError("%s: %scolumn %r: the target holds numbers and the text %r: "
                                 "fix the value, or write an empty field for a missing one"
                                 % (path, "line %d, " % where if where else "", name,
                                    strays[0]))
            raise TableError("%s: %scolumn %r holds numbers and the text %r: fix the value, "
                             "or leave the column out with --drop-cols %s (drop=[...])"
                             % (path, "line %d, " % where if where else "", name, strays[0],
                                name))

    def check_range(self, path, name):
        """A numeric column whose values are too large to be standardized (their squares
        overflow float64) is an error naming it and such a value."""
        if self.huge is not None and self.kind != "text":
            raise TableError("%s: column %r holds values too large to standardize (%r: its "
                             "square overflows float64): rescale the column, or leave it out "
                             "with --drop-cols %s (drop=[...])" % (path, name, self.huge, name))

    @property
    def decimal(self):
        """"," for a CSV column of numbers written with decimal commas, else None."""
        return self.typer.decimal if self.typer is not None and self.kind == "number" else None

    def values(self):
        return self._values if self.kind != "text" else set(self.counts)

    def describe(self, name, max_categories, n_bins=None, category_encoding="onehot"):
        """The column's entry of ``Preprocessing.columns``; ``n_bins``: a number or
        date/time column with at least two distinct values gets the ``edges`` of its
        quantile bins (piecewise-linear encoding, at most ``n_bins`` bins);
        ``category_encoding``: ``Preprocessing.fit``'s, for a text column."""
        if self.kind == "text":
            ranked = sorted(self.counts, key=lambda v: (-self.counts[v], v))
            if category_encoding == "embedding" or (category_encoding == "auto"
                                                    and len(ranked) > max_categories):
                # codes 1..n-1 by decreasing frequency (ties by value); rarer values code 0
                kept = [v for v in ranked if self.counts[v] >= MIN_FREQUENCY]
                return {"name": name, "kind": "code", "type": "text", "categories": kept,
                        "rare": sorted(v for v in ranked if self.counts[v] < MIN_FREQUENCY)}
            if len(ranked) <= max_categories:
                return {"name": name, "kind": "text", "type": "text",
                        "categories": sorted(ranked)}
            kept, rare = ranked[:max_categories - 1], ranked[max_categories - 1:]
            return {"name": name, "kind": "text", "type": "text", "categories": sorted(kept),
                    "infrequent": True, "grouped": len(rare) if not self.overflow else
                    "more than %d" % len(rare), "rare": sorted(rare),
                    "distinct": len(self.counts)}
        column = {"name": name, "kind": "numeric", "type": self.kind or "number"}
        if self.decimal:
            column["decimal"] = self.decimal
        if self.n == 0:
            return dict(column, mean=0.0, scale=1.0)
        mean = self.total / self.n
        var = max(self.total_sq / self.n - mean * mean, 0.0)
        std = float(np.sqrt(var))
        column = dict(column, mean=self.shift + mean, scale=std if std > 0 else 1.0)
        if n_bins and self.sample is not None and column["type"] in ("number", "datetime"):
            edges = quantile_edges(self.sample.values(), n_bins)
            if len(edges) >= 2:  # a constant column stays one standardized input
                column.update(encoding="ple", edges=edges)
        return column


class _Reservoir:
    """A uniform sample of at most ``size`` of the values added (all of them while they
    fit): Algorithm R, with a seeded generator, so a fit is reproducible."""

    def __init__(self, size, seed=0):
        self.size, self.seen = size, 0
        self.chunks, self.full = [], None
        self.rng = np.random.default_rng(seed)

    def add(self, x):
        x = np.asarray(x, np.float64)
        if self.full is None:
            room = self.size - self.seen
            self.chunks.append(x[:room].copy())
            self.seen += min(room, x.size)
            x = x[room:]
            if self.seen < self.size:
                return
            self.full, self.chunks = np.concatenate(self.chunks), []
        if x.size:
            # value j (0-based over all values) replaces slot randint(0, j) when < size
            j = self.seen + np.arange(x.size)
            slot = (self.rng.random(x.size) * (j + 1)).astype(np.int64)
            hit = slot < self.size
            slot, x = slot[hit][::-1], x[hit][::-1]
            slot, last = np.unique(slot, return_index=True)  # the last one to a slot wins
            self.full[slot] = x[last]
            self.seen += j.size

    def values(self):
        return self.full if self.full is not None else (
            np.concatenate(self.chunks) if self.chunks else np.empty(0))


def quantile_edges(values, n_bins):
    """The edges b_0 < ... < b_T of at most ``n_bins`` quantile bins of ``values``: the
    quantiles at 0, 1/n_bins, ..., 1 (NumPy's linear interpolation), repeated ones
    removed, so a column of few distinct values gets fewer bins (as rtdl's
    ``compute_bins``); a list of floats (one edge: a constant column)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return []
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1))).tolist()


def ple_encode(x, edges):
    """The piecewise-linear encoding of values ``x`` (n,) over bins ``edges`` (T + 1,):
    (n, T) float64 whose component t is ``(x - b_{t-1}) / (b_t - b_{t-1})`` clipped to
    [0, 1], but for the first component's lower side and the last one's upper side, which
    are not clipped (Gorishniy, Rubachev and Babenko, "On Embeddings for Numerical
    Features in Tabular Deep Learning", NeurIPS 2022, eq. 1). A value in bin t encodes as
    t - 1 ones, its position in the bin, then zeros."""
    edges = np.asarray(edges, np.float64)
    low, high = _ple_bounds(len(edges) - 1)
    z = (np.asarray(x, np.float64)[:, None] - edges[:-1]) / np.diff(edges)
    return np.minimum(np.maximum(z, low), high)


def _ple_bounds(n):
    """The clip bounds of the ``n`` components of a piecewise-linear encoding."""
    low, high = np.zeros(n), np.ones(n)
    low[0], high[-1] = -np.inf, np.inf
    return low, high


def _recount(path, target, stats):
    """Count again, from the first row, the text values of CSV columns that became text
    after rows of numbers (only those columns are read)."""
    names = list(stats)
    for s in stats.values():
        s.counts, s.missing, s.overflow = {}, 0, False
    read = names + ([target] if target not in stats else [])
    for batch in read_batches(path, read):
        kept = batch.filter(_has_target(batch.column(target)))
        for name in names:
            stats[name].count_text(kept.column(name))


def _left_out(stats, rows, max_categories, keep_identifiers):
    """Why a feature column is left out (an identifier, no values), or None."""
    # a CSV column of empty fields has no type (kind None); a Parquet one keeps its type
    # (double, bool, string) with nothing but nulls: the same column either way
    if (stats.kind is None or (stats.kind != "text" and stats.n == 0)
            or (stats.kind == "text" and set(stats.counts) <= {MISSING})):
        return "no values (every row is empty)"
    if stats.kind != "text" or len(stats.counts) <= max_categories or keep_identifiers:
        return None
    present = sum(n for v, n in stats.counts.items() if v != MISSING)
    distinct = len(stats.counts) - (MISSING in stats.counts)
    if stats.overflow or distinct >= IDENTIFIER_SHARE * present:
        return ("an identifier (%s distinct values in %d rows; keep it with "
                "--keep-identifiers, keep_identifiers=True)"
                % ("more than %d" % _COUNT_LIMIT if stats.overflow else "%d" % distinct, rows))
    return None


def _task(path, target, stats, classify):
    """("regression" | "classification", classes or None) for the target column."""
    kind = stats.kind
    if kind == "datetime":
        raise TableError("%s: the target %r holds dates or times, which a network cannot "
                         "predict here: name another --target-col" % (path, target))
    if classify is False and kind in ("text", "bool"):
        raise TableError("%s: the target %r holds %s (%r, ...): it can only be a class label"
                         % (path, target, "text" if kind == "text" else "True/False",
                            next(iter(stats.values()))))
    if not (classify or kind in ("text", "bool")):
        return "regression", None
    if kind == "text":
        return "classification", sorted(stats.counts)
    if kind == "bool":
        return "classification", [False, True]
    classes = sorted(float(v) for v in stats.values())
    return "classification", [int(c) if float(c).is_integer() else c for c in classes]


def _first_line_with(path, column, value):
    """The line number of the first row of a CSV whose ``column`` holds ``value``, or None."""
    with open_csv_text(path) as f:
        rows = _csv_reader(f, path)
        header = next(rows, [])
        if column not in header:
            return None
        k = header.index(column)
        for row in rows:
            if len(row) > k and row[k] == value:
                return rows.line_num
    return None


def _choose_features(path, names, target, features, drop):
    if isinstance(features, str):
        features = [f for f in features.split(",") if f]
    if isinstance(drop, str):
        drop = [d for d in drop.split(",") if d]
    if features is not None and not list(features):
        raise TableError("%s: features names no column: name at least one, or leave features "
                         "out for every column but the target" % path)
    both = [n for n in features or [] if n in (drop or [])]
    if both:
        raise TableError("%s: %s named both as features and to drop: name each in one"
                         % (path, ", ".join(map(repr, both))))
    for what, given in (("features", features), ("drop", drop)):
        unknown = [n for n in given or [] if n not in names]
        if unknown:
            raise TableError("%s has no column %s (named in %s; columns: %s)"
                             % (path, ", ".join(map(repr, unknown)), what, ", ".join(names)))
    chosen = [n for n in (features or names) if n != target and n not in (drop or [])]
    if not chosen:
        raise TableError("%s: no feature columns are left (target %r)" % (path, target))
    return chosen


def integral_text(values):
    """A string array with each whole number written as an integer: ``"2379.0"`` and
    ``"2379.000"`` as ``"2379"`` (pandas writes an integer column holding a missing value
    as floats, and pyarrow casts the float 2379.0 to ``"2379"``), anything else as it is
    (``"007"`` stays ``"007"``): the values of a column named in ``categorical``, so that a
    code reads as the same category whichever way a file spells it."""
    pc = _pyarrow().compute
    return pc.replace_substring_regex(values, pattern=r"^([+-]?[0-9]+)\.0*$",
                                      replacement=r"\1")


def _categorical(path, chosen, target, categorical):
    """The names of ``Preprocessing.fit``'s ``categorical``, checked: feature columns."""
    if categorical is None:
        return []
    if isinstance(categorical, str):
        categorical = [c for c in categorical.split(",") if c]
    categorical = list(categorical)
    if target in categorical:
        raise TableError("%s: the target %r is named in categorical (--categorical-cols): a "
                         "target is a class label or a number, as classify (--output) says"
                         % (path, target))
    unknown = [n for n in categorical if n not in chosen]
    if unknown:
        raise TableError("%s: %s named in categorical (--categorical-cols) %s not a feature "
                         "column (features: %s)"
                         % (path, ", ".join(map(repr, unknown)),
                            "is" if len(unknown) == 1 else "are", ", ".join(chosen)))
    return categorical


def _category_index(values, categories):
    """Index of each value in ``categories`` (missing values as MISSING), -1 if not there."""
    pa = _pyarrow()
    columns = _coltypes()
    values = columns.to_text(values).fill_null(columns.text_scalar(MISSING))
    index = pa.compute.index_in(values, value_set=columns.string_array(categories))
    return columns.float64_values(index.fill_null(columns.int32_scalar(-1))).astype(np.int64)


def _class_index(y, classes, target_type, decimal=None):
    """Index of each target value in ``classes``, -1 where it is not one of them."""
    if target_type == "text" or (target_type is None and isinstance(classes[0], str)):
        return _category_index(y, classes)
    x = _coltypes().to_float(y, "bool" if target_type == "bool" else "number",
                             decimal if target_type == "number" else None)
    values = np.asarray(classes, dtype=np.float64)
    at = np.clip(np.searchsorted(values, x), 0, len(values) - 1)
    return np.where(values[at] == x, at, -1)


def _bar(path, show):
    return progress.bar(None, "reading %s" % os.path.basename(os.fspath(path)), show)


def check_preprocessing(net):
    """``net.preprocessing`` when it is a ``Preprocessing`` making ``net.n_inputs``
    inputs (or None); else a one-line error naming ``preprocessing``."""
    prep = getattr(net, "preprocessing", None)
    if prep is None:
        return None
    if not isinstance(prep, Preprocessing):
        raise InvalidTypeError("preprocessing must be None or a numba_dense.model.data.tabular."
                               "Preprocessing, got %s" % type(prep).__name__)
    if prep.n_features != net.n_inputs:
        raise InvalidValueError("preprocessing makes %d inputs but the network "
                                "has %d (layer_sizes[0])" % (prep.n_features, net.n_inputs))
    check_embeddings(prep, net)
    return prep


def check_embeddings(prep, net, what="preprocessing"):
    """A one-line error unless the network embeds exactly the code inputs of ``prep``
    (``Preprocessing.embeddings``), with their numbers of categories: a code read as a
    number, or a number read as a code, would be a silent mistake."""
    want = prep.embeddings
    spec = getattr(net, "embeddings", None)
    have = {} if spec is None else dict(zip(spec.columns, spec.cardinalities))
    if want == have:
        return
    raise InvalidValueError(
        "%s makes %s but the network embeds %s: build it with MLP(layer_sizes, "
        "embeddings=prep.embeddings)"
        % (what, "category codes in inputs %s" % _codes(prep, want) if want else
           "no category codes", "inputs %s" % _codes(None, have) if have else "none"))


def _codes(prep, embeddings):
    """``{index: n_categories}`` as ``3 (tailnum, 4045 categories), ...`` for a message
    (``prep``: whose feature names to show, or None)."""
    names = prep.feature_names if prep is not None else []
    return ", ".join("%d (%s%d categories)" % (i, names[i] + ", " if i < len(names) else "", n)
                     for i, n in sorted(embeddings.items()))
