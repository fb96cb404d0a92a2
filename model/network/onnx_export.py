"""ONNX export of a trained ``MLP``, its table preprocessing, and our scikit-learn estimators.

``to_onnx(net)`` builds one graph (the ``onnx`` package, default opset 17 plus
``ai.onnx.ml`` for text columns) that computes what ``net.predict`` (and, for a classifier,
``net.predict_proba``) computes:

- **inputs**: ``X`` (N, n_0) in the network's dtype; or, for a network trained on a CSV or
  Parquet table (``net.preprocessing``), one input per feature column, named as the column
  and in the file's order, each (N, 1): a **number** column as double (NaN for a missing
  value); a **True/False** column as double 1/0 (NaN: missing); a **date/time** column as
  double seconds since 1970-01-01 UTC (NaN: missing); a **text** column as string (a
  missing value as ``""`` or any of ``model.data.tabular.NULL_VALUES``, which CSV files
  read as missing; numbers of a Parquet text column as ``str`` writes them);
- **preprocessing** as nodes: imputation with the training mean, ``(x - mean) / scale``
  in double and then the network's dtype (as ``Preprocessing.transform``), or a
  piecewise-linear encoding over quantile bins (``Sub``, ``Div``, ``Max``, ``Min`` in
  double; ``numeric_encoding="ple"``), one-hot
  columns (``LabelEncoder`` and a comparison: a value not seen in training encodes as
  ``<infrequent>`` where the column has that category, else as zeros), in the order of
  ``feature_names``;
- **the network**: one ``Gemm`` per layer and its activation (``Relu``, ``LeakyRelu``
  (alpha 0.01), ``Tanh``, ``Sigmoid``, none for identity; GELU as ``z (1 + Erf(z / sqrt
  2)) / 2`` and SiLU as ``z Sigmoid(z)`` where the kernels have them);
- **outputs**: a regression's ``variable`` (N, n_L) in the target's units (the
  ``target_scaling`` as a ``Mul`` and an ``Add``; ``Exp`` for a Poisson, ``output="exp"``,
  network); a classifier's ``label`` ((N,) int64 class indices: ``ArgMax`` for softmax,
  ``z > 0`` for one sigmoid; (N, K) 0/1 for K sigmoids; the class labels as the table
  spells them, through a ``Gather``, for a network trained on a table) and
  ``probabilities`` (softmax (N, K); one sigmoid (N, 2) as ``[1 - p, p]``; K sigmoids
  (N, K)).

What a graph cannot do: refuse a row. ``predict`` raises for an inf input, a value beyond
float32's range once standardized, or an unparsable field; the graph computes with it (inf
or NaN outputs). ``last_read``'s counts of unseen values have no counterpart. A column kind
this module does not know raises ``OnnxExportError`` naming the column instead of
exporting a graph that would read it wrongly.

``model.interfaces.skl2onnx_converters.register_skl2onnx()`` registers converters for
``MLPRegressor`` and ``MLPClassifier`` with skl2onnx, built from the pieces here.
"""

import os

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ...kernels.variants import ACTIVATION_TABLE, LEAKY_SLOPE
from ..data import tabular
from ..data.paths import atomic_write, check_output

#: The opset of the default domain the graphs are written for (ONNX Runtime >= 1.17 runs it).
OPSET = 17
#: The opset of ``ai.onnx.ml`` (LabelEncoder with string keys).
ML_OPSET = 3

#: ONNX node of each activation name (identity: none).
_ACTIVATION_NODES = {"relu": "Relu", "leaky_relu": "LeakyRelu", "tanh": "Tanh",
                     "sigmoid": "Sigmoid", "identity": None}


class OnnxExportError(InvalidValueError):
    """A part of a model that an ONNX graph cannot express (named in the message)."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install "
                          "'numba-dense[onnx]' (or pip install onnx)") from None
    return onnx


# ----------------------------------------------------------------------------- graph builder

class _Builder:
    """Nodes and constants of a graph under construction, with unique names; subclassed for
    skl2onnx's container."""

    def __init__(self, taken=()):
        self.onnx = _onnx()
        self.nodes, self.initializers = [], []
        self.taken = set(taken)

    def name(self, hint):
        base = "nd_" + hint
        name, i = base, 1
        while name in self.taken:
            name, i = "%s_%d" % (base, i), i + 1
        self.taken.add(name)
        return name

    def const(self, hint, array):
        array = np.asarray(array)
        name = self.name(hint)
        if array.dtype.kind in "UO":
            self.op("Constant", [], out=name, value=self._string_tensor(name, array))
        else:
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def _string_tensor(self, name, array):
        return self.onnx.helper.make_tensor(name + "_value", self.onnx.TensorProto.STRING,
                                            list(array.shape),
                                            [str(s).encode("utf-8") for s in array.ravel()])

    def op(self, op_type, inputs, out=None, domain="", **attrs):
        out = out or self.name(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out],
                                                     name=self.name("node"), domain=domain,
                                                     **attrs))
        return out


class ContainerBuilder(_Builder):
    """The same nodes written into a skl2onnx ``ModelComponentContainer``."""

    def __init__(self, scope, container):
        self.onnx = _onnx()
        self.scope, self.container = scope, container

    def name(self, hint):
        return self.scope.get_unique_variable_name("nd_" + hint)

    def const(self, hint, array):
        array = np.asarray(array)
        name = self.name(hint)
        if array.dtype.kind in "UO":
            self.op("Constant", [], out=name, value=self._string_tensor(name, array))
        else:
            tensor = self.onnx.numpy_helper.from_array(array, name)
            self.container.add_initializer(name, tensor.data_type, list(array.shape), tensor)
        return name

    def op(self, op_type, inputs, out=None, domain="", **attrs):
        out = out or self.name(op_type.lower())
        version = ML_OPSET if domain == "ai.onnx.ml" else OPSET
        if op_type == "LabelEncoder":
            version = 2  # string keys to int64 values: LabelEncoder-2
        self.container.add_node(op_type, list(inputs), [out], op_domain=domain,
                                op_version=version, name=self.scope.get_unique_operator_name(
                                    "nd_" + op_type), **attrs)
        return out


def elem_type(dtype):
    """The ONNX element type of float32 (1) or float64 (11)."""
    return {np.dtype(np.float32): 1, np.dtype(np.float64): 11}[np.dtype(dtype)]


# ----------------------------------------------------------------------------- the pieces

def network_nodes(b, net, x, unknown_codes_last=False):
    """Nodes of the layers of ``net`` on input ``x`` (N, n_0) of its dtype (``b``: a builder);
    the last layer's output name (logits for a cross-entropy network). For ``to_onnx`` and
    the skl2onnx converters; ``unknown_codes_last``: a negative category code, or one beyond
    the table's second-last row, reads its last row (the estimators' missing-or-unknown
    row), not a runtime error."""
    a = x
    if getattr(net, "embeddings", None) is not None:
        a = _lookup_nodes(b, net, x, unknown_codes_last)
    for l, (W, bias) in enumerate(zip(net.weights, net.biases)):
        a = b.op("Gemm", [a, b.const("W%d" % l, W), b.const("b%d" % l, bias)], transB=1)
        a = _activation(b, ACTIVATION_TABLE[int(net.acts[l])].name, a, net.dtype, l)
    return a


def _lookup_nodes(b, net, x, unknown_codes_last):
    """The first dense layer's input of a network with category embeddings
    (``kernels.embedding``): X's other columns (a ``Gather`` on axis 1), then each code
    column's table row (``Cast`` to int64, a ``Gather`` of the table on axis 0, ``Flatten``
    to (N, dim)), concatenated. A graph cannot refuse a row as ``predict`` does: a
    fractional code is truncated by the ``Cast``, a negative one down to -n reads from the
    table's end (``Gather``'s negative indices), and one beyond the table (or below -n, or
    NaN) is an error of the runtime for the whole batch. ``unknown_codes_last`` (the
    estimators'): a negative code and one beyond the second-last row read the last row."""
    spec = net.embeddings
    codes = set(spec.columns)
    numbers = [j for j in range(net.n_inputs) if j not in codes]
    blocks = []
    if numbers:
        blocks.append(b.op("Gather", [x, b.const("number_columns", np.array(numbers, np.int64))],
                           axis=1))
    for column, table in zip(spec.columns, net.tables):
        code = b.op("Gather", [x, b.const("code_column", np.array([column], np.int64))], axis=1)
        index = b.op("Cast", [code], to=7)
        if unknown_codes_last:  # missing (negative) and unseen codes: the last row
            last = b.const("last_code", np.array(len(table) - 1, np.int64))
            outside = b.op("Or", [b.op("Less", [index, b.const("zero", np.array(0, np.int64))]),
                                  b.op("Greater", [index, b.const("last_seen", np.array(
                                      len(table) - 2, np.int64))])])
            index = b.op("Where", [outside, last, index])
        rows = b.op("Gather", [b.const("table%d" % column, table), index], axis=0)
        blocks.append(b.op("Flatten", [rows], axis=1))
    return blocks[0] if len(blocks) == 1 else b.op("Concat", blocks, axis=1)


def _activation(b, name, z, dtype, layer):
    if name == "gelu":  # exact: z (1 + erf(z / sqrt 2)) / 2
        root2 = b.const("sqrt2", np.array([np.sqrt(2.0)], dtype))
        erf = b.op("Erf", [b.op("Div", [z, root2])])
        half = b.const("half", np.array([0.5], dtype))
        one = b.const("one", np.array([1.0], dtype))
        return b.op("Mul", [z, b.op("Mul", [b.op("Add", [erf, one]), half])])
    if name == "silu":
        return b.op("Mul", [z, b.op("Sigmoid", [z])])
    node = _ACTIVATION_NODES.get(name, False)
    if node is False:
        raise OnnxExportError("activation %r of layer %d has no ONNX counterpart here"
                              % (name, layer))
    if node == "LeakyRelu":
        return b.op(node, [z], alpha=float(LEAKY_SLOPE))
    return z if node is None else b.op(node, [z])


def regression_nodes(b, net, z, out):
    """``variable``: outputs in the target's units (and exp for a Poisson network)."""
    scaling = net.target_scaling
    if scaling is not None:
        z = b.op("Mul", [z, b.const("target_scale", np.array(scaling.scale, net.dtype))])
        z = b.op("Add", [z, b.const("target_mean", scaling.mean.astype(net.dtype))])
    if net.output == "exp":
        z = b.op("Exp", [z])
    return b.op("Identity", [z], out=out)


def classifier_nodes(b, net, z, label_out, proba_out, classes=None):
    """``label`` and ``probabilities`` of a classifier's logits ``z``; ``classes``: labels
    to map the class indices to (None: the indices)."""
    if net.output == "softmax":
        index = b.op("ArgMax", [z], axis=1, keepdims=0)
        b.op("Softmax", [z], out=proba_out, axis=1)
    else:
        positive = b.op("Cast", [b.op("Greater", [z, b.const("zero", np.zeros(1, net.dtype))])],
                        to=7)
        p = b.op("Sigmoid", [z])
        if net.n_outputs == 1:
            index = b.op("Squeeze", [positive, b.const("axis1", np.array([1], np.int64))])
            one_minus = b.op("Sub", [b.const("one", np.ones(1, net.dtype)), p])
            b.op("Concat", [one_minus, p], out=proba_out, axis=1)
        else:
            index = positive
            b.op("Identity", [p], out=proba_out)
    if classes is None:
        return b.op("Identity", [index], out=label_out)
    return b.op("Gather", [b.const("classes", classes), index], out=label_out, axis=0)


def _class_array(classes):
    """A table's classes as the constant its labels are gathered from (as ``labels``)."""
    if isinstance(classes[0], str):
        return np.array([str(c) for c in classes], dtype=object)
    return np.asarray(classes)


def _table_inputs(b, prep, dtype):
    """(graph inputs [(name, elem type)], name of the (N, n_features) features in ``dtype``)
    of a table's preprocessing."""
    inputs, blocks = [], []
    for column in prep.columns:
        name = column["name"]
        if column["kind"] == "numeric" and column["type"] in ("number", "bool", "datetime"):
            inputs.append((name, 11))
            missing = b.op("IsNaN", [name])
            mean = b.const("mean", np.array([[column["mean"]]], np.float64))
            filled = b.op("Where", [missing, mean, name])
            if column.get("encoding") == "ple":
                blocks.append(b.op("Cast", [_ple_nodes(b, filled, column["edges"])], to=1))
                continue
            z = b.op("Div", [b.op("Sub", [filled, mean]),
                             b.const("scale", np.array([[column["scale"]]], np.float64))])
            blocks.append(b.op("Cast", [z], to=1))
        elif column["kind"] == "text":
            inputs.append((name, 8))
            categories = [str(c) for c in column["categories"]]
            default = len(categories) if column.get("infrequent") else -1
            missing_at = categories.index(tabular.MISSING) if tabular.MISSING in categories \
                else default
            keys = categories + [v for v in tabular.NULL_VALUES if v not in categories]
            values = list(range(len(categories))) + [missing_at] * (len(keys) - len(categories))
            index = b.op("LabelEncoder", [name], domain="ai.onnx.ml", keys_strings=keys,
                         values_int64s=values, default_int64=default)
            width = len(categories) + bool(column.get("infrequent"))
            hot = b.op("Equal", [index, b.const("onehot",
                                                np.arange(width, dtype=np.int64)[None, :])])
            blocks.append(b.op("Cast", [hot], to=1))
        elif column["kind"] == "code":  # one input of category codes (an embedding's)
            inputs.append((name, 8))
            categories = [str(c) for c in column["categories"]]
            missing_at = (categories.index(tabular.MISSING) + 1 if tabular.MISSING in categories
                          else 0)
            keys = categories + [v for v in tabular.NULL_VALUES if v not in categories]
            values = list(range(1, len(categories) + 1)) + [missing_at] * (
                len(keys) - len(categories))
            # rare and unseen values: code 0 (the LabelEncoder's default)
            code = b.op("LabelEncoder", [name], domain="ai.onnx.ml", keys_strings=keys,
                        values_int64s=values, default_int64=0)
            blocks.append(b.op("Cast", [code], to=1))
        else:
            raise OnnxExportError(
                "column %r of the preprocessing is of kind %r (type %r), which the ONNX "
                "export cannot express; export a network trained on arrays instead"
                % (name, column.get("kind"), column.get("type")))
    features = blocks[0] if len(blocks) == 1 else b.op("Concat", blocks, axis=1)
    if np.dtype(dtype) != np.float32:
        features = b.op("Cast", [features], to=elem_type(dtype))
    return inputs, features


def _ple_nodes(b, x, edges):
    """The piecewise-linear encoding (``tabular.ple_encode``) of ``x`` (N, 1) double over
    bins ``edges``: (N, T) double, ``(x - b_{t-1}) / (b_t - b_{t-1})`` clipped by a ``Max``
    and a ``Min`` with per-bin bounds (-inf below the first bin, inf above the last)."""
    edges = np.asarray(edges, np.float64)
    low, high = tabular._ple_bounds(len(edges) - 1)
    z = b.op("Div", [b.op("Sub", [x, b.const("bin_left", edges[None, :-1])]),
                     b.const("bin_width", np.diff(edges)[None, :])])
    z = b.op("Max", [z, b.const("bin_low", low[None, :])])
    return b.op("Min", [z, b.const("bin_high", high[None, :])])


def check_net(net):
    """``net.preprocessing`` (or None) of an MLP with finite parameters; TypeError or
    ValueError otherwise. (MLP is not imported: mlp imports this module.)"""
    if not all(hasattr(net, a) for a in ("params", "weights", "biases", "acts", "sizes",
                                         "is_classifier", "target_scaling")):
        raise InvalidTypeError("net must be a numba_dense MLP, got %s" % type(net).__name__)
    if not np.isfinite(net.params).all():
        raise InvalidValueError("net: params hold NaN or inf; a graph of it would predict "
                                "NaN (train it again)")
    return tabular.check_preprocessing(net)


def check_path_and_opset(path, opset):
    """``opset`` checked (default ``OPSET``), and ``path``, when given, a writable ``.onnx``
    name: ``ValueError`` otherwise."""
    if path is not None:
        # as the command line's --out: the suffix keeps a slip from overwriting the
        # network's own .npz (or any other file) with the graph
        suffix = os.path.splitext(os.fspath(path))[1]
        if suffix.lower() != ".onnx":
            raise InvalidValueError("path must end in .onnx, got %r" % (os.fspath(path),))
        check_output(path, "path")
    opset = OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset < 13:
        raise InvalidValueError("opset must be an integer >= 13, got %r" % (opset,))
    return opset


def graph_inputs(b, prep, dtype, n_inputs):
    """(the graph's input value infos, the name of the network's input rows): ``X`` (N,
    n_inputs), or one (N, 1) input per column of the table preprocessing ``prep``."""
    helper = _onnx().helper
    if prep is None:
        return [helper.make_tensor_value_info("X", elem_type(dtype), [None, n_inputs])], "X"
    pairs, x = _table_inputs(b, prep, dtype)
    return [helper.make_tensor_value_info(n, t, [None, 1]) for n, t in pairs], x


def table_classes(prep):
    """A table classifier's class labels as an array for a ``Gather`` (None otherwise)."""
    if prep is not None and prep.classes is not None:
        return _class_array(prep.classes)
    return None


def classifier_outputs(net, classes):
    """The value infos of a classifier graph's ``label`` (int64, or the table's labels) and
    ``probabilities`` (two columns for one sigmoid output)."""
    helper = _onnx().helper
    if classes is None:
        label_elem = 7
    else:
        label_elem = 8 if classes.dtype == object else helper.np_dtype_to_tensor_dtype(
            classes.dtype)
    label_shape = [None] if net.output == "softmax" or net.n_outputs == 1 \
        else [None, net.n_outputs]
    width = 2 if net.output == "sigmoid" and net.n_outputs == 1 else net.n_outputs
    return [helper.make_tensor_value_info("label", label_elem, label_shape),
            helper.make_tensor_value_info("probabilities", elem_type(net.dtype),
                                          [None, width])]


def regression_outputs(net):
    """The value info of a regression graph's ``variable`` (N, n_L)."""
    return [_onnx().helper.make_tensor_value_info("variable", elem_type(net.dtype),
                                                  [None, net.n_outputs])]


def finish_model(b, name, inputs, outputs, opset, doc, path):
    """The checked ``ModelProto`` of the builder's nodes, written to ``path`` (atomically)
    when given."""
    onnx = _onnx()
    helper = onnx.helper
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.initializers)
    imports = [helper.make_opsetid("", int(opset))]
    if any(n.domain == "ai.onnx.ml" for n in b.nodes):
        imports.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=imports, producer_name="numba-dense",
                              doc_string=doc)
    model.ir_version = min(model.ir_version, 8)  # readable by ONNX Runtime >= 1.14
    onnx.checker.check_model(model)
    if path is not None:
        data = model.SerializeToString()
        atomic_write(path, "path", lambda f: f.write(data))
    return model


# ----------------------------------------------------------------------------- public

def to_onnx(net, path=None, opset=None, name="numba_dense_mlp"):
    """The ONNX ``ModelProto`` of ``net`` (see the module docstring), also written to
    ``path`` (atomically) when given.

    Inputs: ``X`` (N, n_0) float32 or float64 (the network's dtype), or one (N, 1) input
    per table column for a network trained on a table. Outputs: ``variable`` (N, n_L) in
    the network's dtype for a regression; ``label`` and ``probabilities`` for a classifier.
    ``opset``: the default domain's opset, at least 13 (default ``OPSET``). Raises
    ``ImportError`` without the onnx package, ``TypeError`` for a ``net`` that is not an
    ``MLP``, ``ValueError`` for a path that cannot be written or a network with NaN
    parameters, ``OnnxExportError`` for a part the graph cannot express.
    """
    prep = check_net(net)
    opset = check_path_and_opset(path, opset)
    _onnx()
    b = _Builder(taken=[c["name"] for c in prep.columns] if prep is not None else ["X"])
    inputs, x = graph_inputs(b, prep, net.dtype, net.n_inputs)
    z = network_nodes(b, net, x)
    if net.is_classifier:
        classes = table_classes(prep)
        classifier_nodes(b, net, z, "label", "probabilities", classes)
        outputs = classifier_outputs(net, classes)
    else:
        regression_nodes(b, net, z, "variable")
        outputs = regression_outputs(net)
    return finish_model(b, name, inputs, outputs, opset, repr(net), path)
