"""The maths of pruning at initialization, free of runs and records: pruners and their choices, FLOPs and
the per-layer summary, training loops, inference variants, trace analysis, the conservation laws."""
