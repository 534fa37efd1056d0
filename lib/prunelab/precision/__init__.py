"""Numbers in other precisions: mixed precision training (:mod:`.amp`), peak memory (:mod:`.memory`),
int8 post-training quantization (:mod:`.int8`; torchao's PT2E path in :mod:`.pt2e`), timing models side by
side (:mod:`.timing`), model sizes on disk (:mod:`.sizes`)."""
