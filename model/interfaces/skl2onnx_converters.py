"""skl2onnx converters for ``MLPRegressor`` and ``MLPClassifier``: a scikit-learn ``Pipeline``
ending in one of them converts as one graph (``skl2onnx.to_onnx(pipeline, X[:1])``) once
``register_skl2onnx()`` has run. The network's nodes are those of
``model.network.onnx_export``; multi-label classifiers raise ``OnnxExportError``. An
estimator with ``n_networks`` K > 1 converts as its ``predict`` computes: every network's
nodes, then the mean of their outputs or probabilities (``model.network.ensemble_onnx``), the
label the class of the highest mean probability.
"""

import numpy as np

from ...kernels.errors import InvalidValueError
from ..network.ensemble_onnx import _mean, _probabilities
from ..network.onnx_export import (ContainerBuilder, OnnxExportError, check_net,
                                   classifier_nodes, elem_type, network_nodes, regression_nodes)


def _estimator_network(estimator):
    net = getattr(estimator, "_net", None)
    if net is None:
        raise InvalidValueError("%s is not fitted: fit it before converting it"
                                % type(estimator).__name__)
    check_net(net)
    return net


def _members(estimator):
    """The networks of an estimator fit with ``n_networks`` > 1 besides ``_net``, checked."""
    nets = [m._net for m in estimator.__dict__.get("_members", ())]
    for net in nets:
        check_net(net)
    return nets


def _input_as(b, operator, net):
    x = operator.inputs[0].full_name
    if operator.inputs[0].type.__class__.__name__ != (
            "FloatTensorType" if net.dtype == np.float32 else "DoubleTensorType"):
        x = b.op("Cast", [x], to=elem_type(net.dtype))
    return x


def _output_elem(variable):
    return 11 if variable.type.__class__.__name__ == "DoubleTensorType" else 1


def _convert_regressor(scope, operator, container):
    """skl2onnx converter of ``MLPRegressor``: ``variable`` (N, n_outputs)."""
    net = _estimator_network(operator.raw_operator)
    b = ContainerBuilder(scope, container)
    x = _input_as(b, operator, net)
    values = [regression_nodes(b, n, network_nodes(b, n, x, True), b.name("values"))
              for n in [net] + _members(operator.raw_operator)]
    values = values[0] if len(values) == 1 else _mean(b, values, net.dtype, b.name("mean"))
    b.op("Cast", [values], out=operator.outputs[0].full_name,
         to=_output_elem(operator.outputs[0]))


def _convert_classifier(scope, operator, container):
    """skl2onnx converter of ``MLPClassifier``: ``label`` (N,) as ``classes_``, and
    ``probabilities`` (N, n_classes)."""
    estimator = operator.raw_operator
    net = _estimator_network(estimator)
    if net.output == "sigmoid" and net.n_outputs > 1:
        raise OnnxExportError("a multi-label MLPClassifier (%d sigmoid outputs) has no "
                              "skl2onnx converter here; export its network with "
                              "numba_dense's to_onnx" % net.n_outputs)
    b = ContainerBuilder(scope, container)
    x = _input_as(b, operator, net)
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind in "UO":
        classes = np.array([str(c) for c in classes], dtype=object)
    else:
        classes = classes.astype(np.int64)
    proba = b.name("proba")
    members = _members(estimator)
    if not members:
        classifier_nodes(b, net, network_nodes(b, net, x, True), operator.outputs[0].full_name,
                         proba, classes)
    else:  # n_networks > 1: the label of the mean probabilities ([1 - p, p] for one sigmoid)
        _mean(b, [_probabilities(b, n, network_nodes(b, n, x, True)) for n in [net] + members],
              net.dtype, proba)
        index = b.op("ArgMax", [proba], axis=1, keepdims=0)
        b.op("Gather", [b.const("classes", classes), index], out=operator.outputs[0].full_name,
             axis=0)
    b.op("Cast", [proba], out=operator.outputs[1].full_name,
         to=_output_elem(operator.outputs[1]))


_REGISTERED = []


def register_skl2onnx():
    """Register the converters of ``MLPRegressor`` and ``MLPClassifier`` with skl2onnx (once;
    later calls do nothing). ``skl2onnx.to_onnx(pipeline, X[:1])`` then converts a
    ``Pipeline`` ending in one of them; classifiers take skl2onnx's ``zipmap`` and ``nocl``
    options. Raises ``ImportError`` without skl2onnx."""
    if _REGISTERED:
        return
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                      calculate_linear_regressor_output_shapes)
    except ImportError:
        raise ImportError("the skl2onnx converters need skl2onnx: pip install "
                          "'numba-dense[onnx]' (or pip install skl2onnx)") from None
    from .estimators import MLPClassifier, MLPRegressor
    update_registered_converter(MLPRegressor, "NumbaDenseMLPRegressor",
                                calculate_linear_regressor_output_shapes, _convert_regressor)
    update_registered_converter(MLPClassifier, "NumbaDenseMLPClassifier",
                                calculate_linear_classifier_output_shapes, _convert_classifier,
                                options={"zipmap": [True, False, "columns"],
                                         "nocl": [True, False]})
    _REGISTERED.append(True)
