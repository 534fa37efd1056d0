"""Models: masked layers (:mod:`.layers`) and the original tool's model classes, built by name through
:mod:`.registry`.

This file holds no torch import, so the command line can list the model classes without loading torch.
"""

#: the original tool's ``--model-class`` values, in its order (:mod:`.registry` maps each to its models)
MODEL_CLASS_NAMES = ("default", "lottery", "tinyimagenet", "imagenet")
