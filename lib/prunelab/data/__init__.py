"""Data sets: their facts (:mod:`.catalog`), whole tensors on the device (:mod:`.in_memory`), image folders
(:mod:`.folders`), and one interface for a run over both (:mod:`.run_data`)."""
