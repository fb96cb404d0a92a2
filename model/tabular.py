"""Tabular files as they come (CSV, Parquet): names, text categories, missing values, scaling.

``Preprocessing.fit(path, target)`` learns in one streaming pass over a file what turns
its rows into network inputs, and that travels inside the saved model (plain arrays and
JSON, no pickle):

- the feature columns (all but the target, or ``features``, less ``drop``);
- numeric columns: missing values (empty, NA, NaN, NULL, ...) imputed with the column's
  training mean, then standardized with its mean and standard deviation (``scale``);
- text columns: one-hot encoded over the values seen in training (at most
  ``max_categories`` per column), a missing value being a category of its own; a value
  not seen in training encodes as all zeros and is counted;
- the target: numbers (regression) or classes (text labels, or numbers with
  ``classify``), mapped to 0..K-1 and back; rows whose target is missing are left out and
  counted.

``Preprocessing.transform`` applies it to a batch; ``batches`` streams ready float32
chunks of any file with the same columns; ``write_npy`` writes a whole file as ``.npy``
inputs and targets (``numpy.lib.format.open_memmap``) for ``MLP.fit`` to stream.

Files are read with pyarrow's streaming readers (``pyarrow.csv.open_csv`` and
``pyarrow.parquet.ParquetFile.iter_batches``): quoting, type inference, multi-threaded
parsing, and memory bounded by one block of rows whatever the file's size. A problem in a
CSV (a ragged row, text in a numeric column) is located by line and column with Python's
csv module, which only runs when pyarrow has refused the file.
"""

import csv
import json
import os

import numpy as np

from .validation import is_number

#: Field values read as missing.
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "n/a"]
#: The category a missing text value gets.
MISSING = "<missing>"
CSV_EXTENSIONS = (".csv",)
PARQUET_EXTENSIONS = (".parquet", ".pq")
#: Bytes of CSV parsed per block (pyarrow's block_size): bounds the memory of a read.
BLOCK_BYTES = 1 << 22
#: Rows per Parquet batch.
PARQUET_ROWS = 1 << 16
#: Distinct values counted per text column before giving up on the exact number.
_COUNT_LIMIT = 100_000


class TableError(ValueError):
    """A file that cannot be read as a table, or does not fit its preprocessing."""


def is_table(path):
    """True for a path (str or os.PathLike) ending in .csv or .parquet."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    return os.path.splitext(os.fspath(path))[1].lower() in CSV_EXTENSIONS + PARQUET_EXTENSIONS


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
    return os.path.splitext(os.fspath(path))[1].lower() in CSV_EXTENSIONS


def column_names(path):
    """The column names of a table file, in order; a clear error for an unreadable one."""
    pa = _pyarrow()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TableError("%s: no such file" % path)
    if _is_csv(path):
        if os.path.getsize(path) == 0:
            raise TableError("%s: the file is empty (no header line)" % path)
        try:
            reader = pa.csv.open_csv(path, read_options=pa.csv.ReadOptions(block_size=1 << 16),
                                     convert_options=_convert_options(None))
        except pa.ArrowInvalid as exc:
            raise _csv_error(path, exc, None) from None
        return reader.schema.names
    try:
        return pa.parquet.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError("%s: not a readable Parquet file (%s)" % (path, exc)) from None


def _convert_options(columns, types=None):
    pa = _pyarrow()
    return pa.csv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True,
                                 include_columns=columns, column_types=types or {})


def _numeric_types(path, columns):
    """{name: float64} for every column the file's first block shows as a number (or empty):
    read as float64 throughout, so that a later 1.5 in a column of ints is no error."""
    pa = _pyarrow()
    reader = pa.csv.open_csv(path, read_options=pa.csv.ReadOptions(block_size=1 << 20),
                             convert_options=_convert_options(columns))
    types = {}
    for field in reader.schema:
        t = field.type
        if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_null(t) or pa.types.is_decimal(t)):
            types[field.name] = pa.float64()
    return types


def read_batches(path, columns=None):
    """The file's rows as a stream of pyarrow RecordBatches of ``columns`` (all if None)."""
    pa = _pyarrow()
    path = os.fspath(path)
    if _is_csv(path):
        try:
            types = _numeric_types(path, columns)
            reader = pa.csv.open_csv(path, read_options=pa.csv.ReadOptions(
                block_size=BLOCK_BYTES), convert_options=_convert_options(columns, types))
            for batch in reader:
                yield batch
        except pa.ArrowInvalid as exc:
            raise _csv_error(path, exc, columns) from None
        return
    try:
        for batch in pa.parquet.ParquetFile(path).iter_batches(batch_size=PARQUET_ROWS,
                                                               columns=columns):
            yield batch
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError("%s: not a readable Parquet file (%s)" % (path, exc)) from None


def _csv_error(path, exc, columns):
    """A one-line ``TableError`` naming the file, line and column of what pyarrow refused."""
    message = str(exc).splitlines()[0]
    if "Empty CSV file" in message:
        return TableError("%s: the file is empty (no header line)" % path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        numeric = set()
        if "conversion error" in message:
            try:
                numeric = set(_numeric_types(path, columns))
            except Exception:  # noqa: BLE001 - only used to word the message
                numeric = set()
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                return TableError("%s: line %d: expected %d fields (as the header), got %d"
                                  % (path, line, len(header), len(row)))
            for name, value in zip(header, row):
                if name in numeric and value.strip() not in NULL_VALUES:
                    try:
                        float(value)
                    except ValueError:
                        return TableError("%s: line %d, column %r: %r is not a number (the "
                                          "column is numeric in the rows above)"
                                          % (path, line, name, value))
    return TableError("%s: %s" % (path, message))


# ----------------------------------------------------------------------------- preprocessing

class Preprocessing:
    """What turns a table's rows into network inputs and targets; see the module docstring.

    Attributes (all plain values, saved with the model): ``target`` (column name),
    ``task`` ("regression" or "classification"), ``columns`` (the feature columns in file
    order, each ``{"name", "kind": "numeric"|"text", ...}`` with ``mean``/``std`` or
    ``categories``), ``classes`` (the labels of a classifier, as read), ``scale``,
    ``feature_names`` (one per input: a numeric column's name, ``column=value`` per
    category), and what the fit saw: ``rows``, ``dropped_rows``, ``imputed``.
    """

    def __init__(self, spec):
        self.__dict__.update(spec)

    # ---- fitting

    @classmethod
    def fit(cls, path, target, features=None, drop=None, max_categories=100, scale=True,
            classify=None, progress=False):
        """Learn the preprocessing of ``path`` (.csv or .parquet) in one streaming pass.

        ``target``: the target column's name. ``features`` (names) or ``drop`` (names to
        leave out) choose the feature columns; by default every column but the target.
        ``classify``: None (text targets are classes, numbers a regression), True or False.
        """
        pa = _pyarrow()
        path = os.fspath(path)
        names = column_names(path)
        if target not in names:
            raise TableError("%s has no column %r (columns: %s)" % (path, target,
                                                                     ", ".join(names)))
        chosen = _choose_features(path, names, target, features, drop)
        stats = {name: _ColumnStats() for name in chosen}
        target_stats = _ColumnStats()
        rows = dropped = 0
        bar = _bar(path, progress)
        for batch in read_batches(path, chosen + [target]):
            y = batch.column(batch.num_columns - 1)
            keep = y.is_valid()
            if pa.types.is_floating(y.type):
                keep = pa.compute.and_(keep, pa.compute.invert(pa.compute.is_nan(y)))
            kept = batch.filter(keep)
            dropped += batch.num_rows - kept.num_rows
            rows += kept.num_rows
            for i, name in enumerate(chosen):
                stats[name].add(kept.column(i), name, max_categories, path)
            target_stats.add(kept.column(kept.num_columns - 1), target, None, path,
                             keep_values=bool(classify))
            bar.update(batch.num_rows)
        bar.close()
        for name in chosen:
            stats[name].check_categories(name, max_categories, path)
        if rows == 0 and dropped == 0:
            raise TableError("%s has a header line but no rows" % path)
        if rows == 0:
            raise TableError("%s has no rows with a value in %r (%d rows read)"
                             % (path, target, dropped))
        columns, feature_names, imputed = [], [], {}
        for name in chosen:
            column = stats[name].describe(name)
            columns.append(column)
            feature_names += ([name] if column["kind"] == "numeric"
                              else ["%s=%s" % (name, c) for c in column["categories"]])
            if stats[name].missing:
                imputed[name] = stats[name].missing
        text_target = target_stats.kind == "text"
        task = "classification" if (classify or (classify is None and text_target)) \
            else "regression"
        if text_target and task == "regression":
            raise TableError("%s: the target %r holds text (%r, ...): it can only be a class "
                             "label" % (path, target, next(iter(target_stats.counts))))
        classes = None
        if task == "classification":
            classes = sorted(target_stats.counts) if text_target else \
                sorted(float(v) for v in target_stats.values())
            classes = [c if text_target else (int(c) if float(c).is_integer() else c)
                       for c in classes]
        if not scale:
            for column in columns:
                if column["kind"] == "numeric":
                    column["scale"] = 1.0
        return cls(dict(target=target, task=task, columns=columns, classes=classes,
                        scale=bool(scale), feature_names=feature_names, rows=rows,
                        dropped_rows=dropped, imputed=imputed, source=os.path.basename(path)))

    @property
    def n_features(self):
        """The width of the inputs it makes."""
        return len(self.feature_names)

    @property
    def n_classes(self):
        return len(self.classes) if self.classes is not None else 0

    def summary(self):
        """A few lines saying what the fit found, for the command line."""
        text = [c["name"] for c in self.columns if c["kind"] == "text"]
        lines = ["read %s: %d rows, %d columns -> %d inputs (%d numeric%s%s)"
                 % (self.source, self.rows, len(self.columns), self.n_features,
                    sum(c["kind"] == "numeric" for c in self.columns),
                    ", standardized" if self.scale else "",
                    "; one-hot: %s" % ", ".join("%s (%d)" % (c["name"], len(c["categories"]))
                                                for c in self.columns if c["name"] in text)
                    if text else "")]
        if self.dropped_rows:
            lines.append("left out %d rows whose target %r is missing"
                         % (self.dropped_rows, self.target))
        if self.imputed:
            lines.append("imputed missing values: %s" % ", ".join(
                "%s %d" % kv for kv in sorted(self.imputed.items())))
        if self.task == "classification":
            lines.append("target %r: %d classes (%s)" % (
                self.target, self.n_classes, ", ".join(map(str, self.classes[:10]))
                + (", ..." if self.n_classes > 10 else "")))
        return lines

    # ---- applying

    def transform(self, batch, with_target=True, counts=None):
        """(X (n, n_features) float32, y) of a RecordBatch holding the feature columns (and the
        target with ``with_target``). y: float32 values (regression) or int64 class
        indices; rows without a target are left out. ``counts`` (a dict) adds up the rows
        left out ("dropped") and the unseen categories ("unseen")."""
        pa = _pyarrow()
        if with_target:
            y_col = batch.column(self.target)
            keep = y_col.is_valid()
            if pa.types.is_floating(y_col.type):
                keep = pa.compute.and_(keep, pa.compute.invert(pa.compute.is_nan(y_col)))
            kept = batch.filter(keep)
            if counts is not None:
                counts["dropped"] = counts.get("dropped", 0) + batch.num_rows - kept.num_rows
            batch = kept
        n = batch.num_rows
        X = np.zeros((n, self.n_features), np.float32)
        at = 0
        for column in self.columns:
            values = batch.column(column["name"])
            if column["kind"] == "numeric":
                x = _as_float(values)
                x[~np.isfinite(x)] = column["mean"]
                X[:, at] = (x - column["mean"]) / column["scale"]
                at += 1
                continue
            k = len(column["categories"])
            index = _category_index(values, column["categories"])
            seen = index >= 0
            X[np.flatnonzero(seen), at + index[seen]] = 1
            if counts is not None and not seen.all():
                unseen = counts.setdefault("unseen", {})
                unseen[column["name"]] = unseen.get(column["name"], 0) + int((~seen).sum())
            at += k
        if not with_target:
            return X, None
        y = batch.column(self.target)
        if self.task == "regression":
            return X, _as_float(y).astype(np.float32)
        labels = [c for c in self.classes]
        index = _category_index(y, labels) if isinstance(labels[0], str) else \
            _number_index(_as_float(y), labels)
        if (index < 0).any():
            bad = y.take(pa.array(np.flatnonzero(index < 0)[:1])).to_pylist()[0]
            raise TableError("the target %r holds %r, a class not seen in training (classes: "
                             "%s)" % (self.target, bad, ", ".join(map(str, self.classes))))
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
        bar = _bar(path, progress)
        for batch in read_batches(path, wanted):
            bar.update(batch.num_rows)
            yield self.transform(batch, with_target, counts)
        bar.close()

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
        from .convert import write_npy_header
        regression = self.task == "regression"
        y_dtype = np.float32 if regression else np.int64
        at = 0
        with open(x_path, "wb") as fx, open(y_path, "wb") as fy:
            write_npy_header(fx, np.float32, (self.rows, self.n_features))
            write_npy_header(fy, y_dtype, (self.rows, 1) if regression else (self.rows,))
            for Xc, yc in self.batches(path, progress=progress):
                if at + len(Xc) > self.rows:
                    break
                fx.write(np.ascontiguousarray(Xc, np.float32).tobytes())
                fy.write(np.ascontiguousarray(yc, y_dtype).tobytes())
                at += len(Xc)
        if at != self.rows:
            raise TableError("%s changed while it was read: the fit saw %d rows"
                             % (os.fspath(path), self.rows))
        return np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")

    # ---- saving

    def to_json(self):
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))


class _ColumnStats:
    """Running count, mean and variance of a numeric column, or the value counts of a text one."""

    def __init__(self):
        self.kind = None
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.shift = None
        self.missing = 0
        self.counts = {}
        self._values = set()

    def add(self, values, name, max_categories, path, keep_values=False):
        """Count a batch's values in; ``keep_values``: remember a numeric column's distinct
        values (the classes of a numeric target)."""
        pa = _pyarrow()
        text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        kind = "text" if text else "numeric"
        if self.kind is None:
            self.kind = kind
        if kind == "numeric":
            x = _as_float(values)
            finite = np.isfinite(x)
            self.missing += int((~finite).sum())
            x = x[finite]
            if x.size:
                if self.shift is None:
                    self.shift = float(x[0])  # shifted sums: no cancellation for large means
                d = x - self.shift
                self.n += x.size
                self.total += float(d.sum())
                self.total_sq += float((d * d).sum())
                if keep_values and len(self._values) <= _COUNT_LIMIT:
                    self._values.update(np.unique(x).tolist())
            return
        self.missing += values.null_count
        if len(self.counts) > _COUNT_LIMIT:
            return  # too many to one-hot anyway: the error says "more than"
        counts = pa.compute.value_counts(values.fill_null(MISSING))
        for item in counts.to_pylist():
            self.counts[item["values"]] = self.counts.get(item["values"], 0) + item["counts"]

    def check_categories(self, name, max_categories, path):
        """The errors of a text column: mostly numbers with a stray text (a typo in a numeric
        column), or more distinct values than ``max_categories``."""
        if self.kind != "text":
            return
        numbers = sum(n for value, n in self.counts.items() if is_number(value))
        strays = [value for value in self.counts if not is_number(value) and value != MISSING]
        if strays and numbers >= 0.9 * sum(self.counts.values()):
            where = _first_line_with(path, name, strays[0]) if _is_csv(path) else None
            raise TableError("%s: %scolumn %r holds numbers and the text %r: fix the value, "
                             "or leave the column out with --drop-cols %s (drop=[...])"
                             % (path, "line %d, " % where if where else "", name, strays[0],
                                name))
        if len(self.counts) > max_categories:
            count = ("more than %d" % _COUNT_LIMIT if len(self.counts) > _COUNT_LIMIT
                     else "%d" % len(self.counts))
            raise TableError(
                "%s: text column %r has %s distinct values, more than --max-categories %d: "
                "leave it out with --drop-cols %s (drop=[...]) or allow more with "
                "--max-categories (max_categories=)" % (path, name, count, max_categories,
                                                        name))

    def values(self):
        return self._values if self.kind == "numeric" else set(self.counts)

    def describe(self, name):
        if self.kind == "text":
            return {"name": name, "kind": "text", "categories": sorted(self.counts)}
        if self.n == 0:
            return {"name": name, "kind": "numeric", "mean": 0.0, "scale": 1.0}
        mean = self.total / self.n
        var = max(self.total_sq / self.n - mean * mean, 0.0)
        std = float(np.sqrt(var))
        return {"name": name, "kind": "numeric", "mean": self.shift + mean,
                "scale": std if std > 0 else 1.0}


def _first_line_with(path, column, value):
    """The line number of the first row of a CSV whose ``column`` holds ``value``, or None."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        if column not in header:
            return None
        k = header.index(column)
        for line, row in enumerate(rows, start=2):
            if len(row) > k and row[k] == value:
                return line
    return None


def _choose_features(path, names, target, features, drop):
    if isinstance(features, str):
        features = [f for f in features.split(",") if f]
    if isinstance(drop, str):
        drop = [d for d in drop.split(",") if d]
    for what, given in (("features", features), ("drop", drop)):
        unknown = [n for n in given or [] if n not in names]
        if unknown:
            raise TableError("%s has no column %s (named in %s; columns: %s)"
                             % (path, ", ".join(map(repr, unknown)), what, ", ".join(names)))
    chosen = [n for n in (features or names) if n != target and n not in (drop or [])]
    if not chosen:
        raise TableError("%s: no feature columns are left (target %r)" % (path, target))
    return chosen


def _as_float(values):
    """A pyarrow array as float64 NumPy values, missing ones NaN (timestamps as numbers)."""
    pa = _pyarrow()
    t = values.type
    if pa.types.is_temporal(t):
        values = values.cast(pa.int64())
    elif not pa.types.is_floating(t):
        values = values.cast(pa.float64())
    return np.array(values.to_numpy(zero_copy_only=False), dtype=np.float64)  # a writable copy


def _category_index(values, categories):
    """Index of each value in ``categories`` (missing values as MISSING), -1 if not there."""
    pa = _pyarrow()
    values = values.cast(pa.string()).fill_null(MISSING)
    index = pa.compute.index_in(values, value_set=pa.array(categories, pa.string()))
    return np.asarray(index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _number_index(x, classes):
    classes = np.asarray(classes, dtype=np.float64)
    at = np.clip(np.searchsorted(classes, x), 0, len(classes) - 1)
    return np.where(classes[at] == x, at, -1)


def _bar(path, show):
    from . import progress
    return progress.bar(None, "reading %s" % os.path.basename(os.fspath(path)), show)
