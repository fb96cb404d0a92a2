"""The ways in besides ``MLP`` itself: the command line (``cli``) and scikit-learn's
estimators (``estimators``)."""
