"""The network: its structure, flat parameters, fit, prediction and scores (``mlp``) and
its files (``persistence``)."""
