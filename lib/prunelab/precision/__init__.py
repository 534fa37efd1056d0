"""Numbers in other precisions: mixed precision training (:mod:`.amp`), peak memory (:mod:`.memory`),
int8 post-training quantization and its timing (:mod:`.int8`), model sizes on disk (:mod:`.sizes`)."""
