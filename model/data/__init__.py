"""Data: sources of rows (``sources``), what turns each kind of input into them
(``inputs``), argument checks (``validation``), tables (``tabular``, ``columns``),
conversion to .npy (``convert``), target scaling (``targets``), output paths (``paths``)
and the built-in dataset (``datasets``)."""
