"""Which columns of X a network reads as learned category embeddings (``kernels.embedding``)."""

from dataclasses import dataclass

import numpy as np

from ... import kernels
from ...kernels.errors import InvalidTypeError, InvalidValueError
from ..data.validation import integer, plain


def widths(cardinalities, max_dim=None):
    """``{column: (n, dim)}`` of ``{column: n}``: fastai's width for each
    (``kernels.embedding_dim``), at most ``max_dim`` when given (an int >= 1)."""
    if max_dim is not None:
        max_dim = integer(max_dim, "max_embedding_dim", 1)
    return {c: (n, kernels.embedding_dim(n) if max_dim is None
                else min(max_dim, kernels.embedding_dim(n)))
            for c, n in cardinalities.items()}


@dataclass(frozen=True)
class CategoryEmbeddings:
    """The code columns of X and their tables: ``columns`` strictly increasing indices of
    X's columns whose values are category codes ``0 .. n - 1``, ``cardinalities`` each
    column's number of categories n, ``dims`` each embedding's width (tuples of ints)."""

    columns: tuple
    cardinalities: tuple
    dims: tuple

    @classmethod
    def parse(cls, embeddings, n_columns):
        """From ``MLP(embeddings=...)``: a mapping ``{column: n_categories}`` or ``{column:
        (n_categories, dim)}`` (a dim of None, or a bare n_categories, takes
        ``kernels.embedding_dim``: fastai's ``min(600, round(1.6 * n ** 0.56))``), for X
        of ``n_columns`` columns; None or an empty mapping for none. Raises
        ``InvalidTypeError`` / ``InvalidValueError`` naming the entry."""
        if embeddings is None:
            return None
        if isinstance(embeddings, cls):
            spec = dict(zip(embeddings.columns, zip(embeddings.cardinalities, embeddings.dims)))
        elif isinstance(embeddings, dict):
            spec = embeddings
        else:
            raise InvalidTypeError("embeddings must be a dict {column: n_categories} or "
                                   "{column: (n_categories, dim)}, got %s"
                                   % type(embeddings).__name__)
        if not spec:
            return None
        columns, cards, dims = [], [], []
        for column in sorted(spec, key=lambda c: integer(c, "embeddings column", 0)):
            col = integer(column, "embeddings column", 0)
            if col >= n_columns:
                raise InvalidValueError("embeddings column %d is outside the %d columns of X "
                                        "(layer_sizes[0])" % (col, n_columns))
            value = spec[column]
            if isinstance(value, (tuple, list)):
                if len(value) != 2:
                    raise InvalidValueError("embeddings[%d] must be n_categories or "
                                            "(n_categories, dim), got %s" % (col, plain(value)))
                n, dim = value
            else:
                n, dim = value, None
            n = integer(n, "embeddings[%d] n_categories" % col, 1)
            dim = (kernels.embedding_dim(n) if dim is None
                   else integer(dim, "embeddings[%d] dim" % col, 1))
            columns.append(col)
            cards.append(n)
            dims.append(dim)
        if len(set(columns)) != len(columns):
            raise InvalidValueError("embeddings names column %s twice" % columns)
        return cls(tuple(columns), tuple(cards), tuple(dims))

    def as_dict(self):
        """``{column: (n_categories, dim)}``: what ``parse`` reads back."""
        return {c: (n, d) for c, n, d in zip(self.columns, self.cardinalities, self.dims)}

    @property
    def table_size(self):
        """The tables' number of parameters, ``sum n_c * d_c``."""
        return kernels.table_size(self.cardinalities, self.dims)

    def input_width(self, n_columns):
        """The first dense layer's width of inputs for X of n_columns columns."""
        return n_columns - len(self.columns) + sum(self.dims)

    def tables(self, flat):
        """Each column's table (n_c, d_c) as a view of ``flat``, the tables' part of params."""
        views, o = [], 0
        for n, d in zip(self.cardinalities, self.dims):
            views.append(flat[o:o + n * d].reshape(n, d))
            o += n * d
        return views

    def record(self, network):
        """The ``kernels.Embeddings`` record of a ``kernels.Network``."""
        return kernels.embeddings(network, np.array(self.columns, np.int64),
                                  np.array(self.cardinalities, np.int64),
                                  np.array(self.dims, np.int64))

    def check_codes(self, X, name="X", first_row=0):
        """``InvalidValueError`` naming the first entry of a code column of X (a dense 2-D
        array) that is not an integer in ``[0, n_c)``, its row counted from ``first_row``
        (a chunk's place in its file): the kernels check the codes too, but name rows of
        the chunk they were given."""
        for column, n in zip(self.columns, self.cardinalities):
            codes = X[:, column]
            with np.errstate(invalid="ignore"):
                bad = ~((codes >= 0) & (codes < n) & (codes == np.floor(codes)))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                value = codes[row]
                shown = ("%d" % value if np.isfinite(value) and float(value).is_integer()
                         and abs(value) < 2 ** 63 else plain(value))
                raise InvalidValueError(
                    "%s[%d, %d] is %s, not a category code: column %d holds integers in "
                    "[0, %d)" % (name, first_row + row, column, shown, column, n))

    def to_arrays(self):
        """Arrays for a saved network (``persistence``)."""
        return {"embedding_columns": np.array(self.columns, np.int64),
                "embedding_cardinalities": np.array(self.cardinalities, np.int64),
                "embedding_dims": np.array(self.dims, np.int64)}
