"""Pruners beyond the built-in five, each in its own module and registered only through the public
:func:`prunelab.register_pruner`, as a researcher's own package would: importing a module registers its
pruner, and pyproject.toml declares each as an entry point of ``prunelab.pruners`` so that an installed
prunelab offers them by name. Nothing in ``core`` or ``runs`` imports this package."""
