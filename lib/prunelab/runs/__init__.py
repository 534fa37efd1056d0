"""A run as a unit: its configuration, its record in the store, checkpoints, the experiment registry,
sweeps and the command line. ``prunelab.runs.registry.run(config)`` runs any experiment by name."""
