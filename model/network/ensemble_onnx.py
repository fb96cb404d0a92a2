"""ONNX export of an ``Ensemble``: one graph that runs every member and averages them.

Built from ``onnx_export``'s pieces: the inputs (``X``, or a table's raw columns with its
preprocessing as nodes, once for all members), each member's layers (``network_nodes``) and
output transform (``regression_nodes``: the member's own target scaling and ``exp``), then

- regression: ``variable`` = ``Sum`` of the members' outputs ``Div`` K;
- classifiers: ``probabilities`` = ``Sum`` of the members' probabilities (``Softmax``;
  ``[1 - p, p]`` for one sigmoid; the sigmoids for several) ``Div`` K, and ``label`` its
  ``ArgMax`` (softmax, one sigmoid) or ``probabilities > 0.5`` (several sigmoids), mapped to a
  table's class labels through a ``Gather`` as ``Ensemble.predict`` maps them.

The graph sums in the networks' dtype where ``Ensemble.predict`` averages in float64 and
rounds once; the two agree to a few units in the last place of the dtype.
"""

import os

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ..data.paths import atomic_write, check_output
from .onnx_export import (ML_OPSET, OPSET, _Builder, _class_array, _onnx, _table_inputs,
                          check_net, elem_type, network_nodes, regression_nodes)


def _probabilities(b, net, z):
    """A classifier's probabilities of its logits ``z``, as ``MLP.predict_proba`` gives them."""
    if net.output == "softmax":
        return b.op("Softmax", [z], axis=1)
    p = b.op("Sigmoid", [z])
    if net.n_outputs == 1:
        one_minus = b.op("Sub", [b.const("one", np.ones(1, net.dtype)), p])
        return b.op("Concat", [one_minus, p], axis=1)
    return p


def _mean(b, names, dtype, out):
    total = names[0] if len(names) == 1 else b.op("Sum", names)
    return b.op("Div", [total, b.const("k", np.array([len(names)], dtype))], out=out)


def to_onnx(ensemble, path=None, opset=None, name="numba_dense_ensemble"):
    """The ONNX ``ModelProto`` of ``ensemble`` (see the module docstring), also written to
    ``path`` (atomically, a ``.onnx`` name) when given. Inputs and outputs are those of
    ``MLP.to_onnx`` for one of the members. Raises ``ImportError`` without the onnx package,
    ``TypeError`` for something that is not an ``Ensemble``, ``ValueError`` for a path that
    is not a writable ``.onnx`` name, a member with NaN parameters or members whose table
    preprocessings differ, ``OnnxExportError`` for a part the graph cannot express."""
    members = getattr(ensemble, "members", None)
    if not isinstance(members, list) or not members:
        raise InvalidTypeError("ensemble must be a numba_dense Ensemble, got %s"
                               % type(ensemble).__name__)
    preps = [check_net(m) for m in members]
    prep = preps[0]
    texts = {None if p is None else p.to_json() for p in preps}
    if len(texts) > 1:
        raise InvalidValueError("the members' table preprocessings differ; an ensemble's "
                                "graph reads the columns once")
    if path is not None:
        if os.path.splitext(os.fspath(path))[1].lower() != ".onnx":
            raise InvalidValueError("path must end in .onnx, got %r" % (os.fspath(path),))
        check_output(path, "path")
    opset = OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or opset < 13:
        raise InvalidValueError("opset must be an integer >= 13, got %r" % (opset,))
    onnx = _onnx()
    helper = onnx.helper
    first = members[0]
    dtype = first.dtype
    b = _Builder(taken=[c["name"] for c in prep.columns] if prep is not None else ["X"])
    elem = elem_type(dtype)
    if prep is None:
        inputs = [helper.make_tensor_value_info("X", elem, [None, first.n_inputs])]
        x = "X"
    else:
        pairs, x = _table_inputs(b, prep, dtype)
        inputs = [helper.make_tensor_value_info(n, t, [None, 1]) for n, t in pairs]
    if first.is_classifier:
        probs = [_probabilities(b, m, network_nodes(b, m, x)) for m in members]
        mean = _mean(b, probs, dtype, "probabilities")
        if first.output == "softmax" or first.n_outputs == 1:
            index = b.op("ArgMax", [mean], axis=1, keepdims=0)
        else:
            half = b.const("half", np.array([0.5], dtype))
            index = b.op("Cast", [b.op("Greater", [mean, half])], to=7)
        classes = None
        if prep is not None and prep.classes is not None:
            classes = _class_array(prep.classes)
        if classes is None:
            b.op("Identity", [index], out="label")
            label_elem = 7
        else:
            b.op("Gather", [b.const("classes", classes), index], out="label", axis=0)
            label_elem = 8 if classes.dtype == object else helper.np_dtype_to_tensor_dtype(
                classes.dtype)
        label_shape = [None] if first.output == "softmax" or first.n_outputs == 1 \
            else [None, first.n_outputs]
        width = 2 if first.output == "sigmoid" and first.n_outputs == 1 else first.n_outputs
        outputs = [helper.make_tensor_value_info("label", label_elem, label_shape),
                   helper.make_tensor_value_info("probabilities", elem, [None, width])]
    else:
        values = [regression_nodes(b, m, network_nodes(b, m, x), b.name("member%d" % k))
                  for k, m in enumerate(members)]
        _mean(b, values, dtype, "variable")
        outputs = [helper.make_tensor_value_info("variable", elem, [None, first.n_outputs])]
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.initializers)
    imports = [helper.make_opsetid("", int(opset))]
    if any(n.domain == "ai.onnx.ml" for n in b.nodes):
        imports.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=imports, producer_name="numba-dense",
                              doc_string=repr(ensemble))
    model.ir_version = min(model.ir_version, 8)  # readable by ONNX Runtime >= 1.14
    onnx.checker.check_model(model)
    if path is not None:
        data = model.SerializeToString()
        atomic_write(path, "path", lambda f: f.write(data))
    return model
