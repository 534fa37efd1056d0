"""The names a run chooses from, each list in the order tables and the command line show it.

No torch here: the command line lists these choices without loading it, and every other module reads
them from this one place. Pruners beyond the built-in five are registered (:mod:`prunelab.core.registry`).
"""

from __future__ import annotations

#: the built-in pruners, in the order every table and the command line list them (registered ones follow)
PRUNERS = ("rand", "mag", "snip", "grasp", "synflow")
#: the built-in pruners' labels in tables and figures, theirs alone whatever registers first
BUILT_IN_LABELS = {"rand": "Rand", "mag": "Mag", "snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow"}
#: the column of the unpruned reference runs (compression 0: every weight kept)
DENSE_LABEL = "Unpruned"
#: SynFlow's scoring rounds unless told otherwise: its paper's iterative method (the original tool used 1)
SYNFLOW_ROUNDS = 100
SCOPES = ("global", "local")
SCHEDULES = ("exponential", "linear")
OPTIMIZERS = ("sgd", "momentum", "adam", "rms")


#: how --invert and --shuffle act, kept in every run's summary. 2: --invert keeps the lowest scores by ranking
#: the negated score (rule 1, the original's reciprocal, mis-ordered signed scores: GraSP's, Rand's, perhaps a
#: registered pruner's), and --shuffle after several rounds permutes each mask over the weights scoring began
#: with (under rule 1 earlier rounds had zeroed the weights they pruned, so a shuffled mask kept zeros)
ABLATION_RULES = 2
#: how a mask is cut where scores tie at the cut, kept in every run's summary. 2: the kept ones among the tied
#: are drawn at random from the run's seed (:mod:`prunelab.core.masking`); 1 (records without the field): the
#: first by position. Records of either rule share a hash: they differ only where scores tied at the cut
MASK_RULES = 2
#: a run whose top-1 is within this many points of always answering the most frequent class counts as at chance
CONSTANT_PREDICTION_MARGIN = 1.0
#: what a run :func:`no_better_than_chance` scores, in words: the one statement of the rule for the run's log, the
#: collapse table's notes and the glossary. No record holds per-class predictions, so the words claim a score,
#: never that a run answers one class
CHANCE_RULE = (f"no more than {CONSTANT_PREDICTION_MARGIN:g} point{'' if CONSTANT_PREDICTION_MARGIN == 1 else 's'} "
               "above always answering the most frequent test class")
#: the built-in pruners whose scores are never negative: rule 1 inverted them as rule 2 does
NON_NEGATIVE_SCORES = ("mag", "snip", "synflow")
#: the built-in pruners whose masks never read the training data (:data:`DATA_FREE_WHY`). Their masks on a
#: synthetic stand-in are the ones they would choose on the real set (Mag reads the data through its
#: pre-training; a registered pruner is assumed to read it)
DATA_FREE_PRUNERS = ("rand", "synflow")
#: the same pruners as a page names them, and how each chooses its mask without data: the one wording the
#: banners and findings use (a test holds the names to the pruners' display names)
DATA_FREE_NAMES = "Rand and SynFlow"
DATA_FREE_WHY = "Rand draws its mask, SynFlow scores an all-ones input"
#: what runs on synthetic stand-in data are good for, after "pipeline checks: ": the one wording each task's
#: banner and the PDF's cover use (the PDF prints it on the cover alone)
STAND_IN_CHECKS = (
    "they show the code runs end to end and must not be read or quoted as accuracies, and the findings draw no "
    f"conclusion from their accuracy or from which weights a data-driven pruner kept on them ({DATA_FREE_NAMES} "
    "never read the data). A given network's time and memory do not depend on pixel values and are measured on "
    "them as on real images; its kept FLOPs and sparse-kernel times follow which weights a data-driven pruner kept, "
    "and so are pipeline checks too.")
#: what a bundled real subset is and what it does to accuracies, after its set-ups and sizes: the one wording
#: each task's banner and the PDF's cover use (the PDF prints it on the cover alone)
REAL_SUBSET_WHY = (
    "These are real images shipped inside an installed package, so they need no download; with fewer "
    "training images than the full set, accuracies sit below full-set figures: compare the pruners with each "
    "other here, not with published numbers.")


def ablation_rules_matter(pruner: str, rounds: int, shuffle: bool, invert: bool) -> bool:
    """Whether a run's result under ablation rule 1 differs from rule 2 (:data:`ABLATION_RULES`): a record made
    before rule 2 is recomputed only then."""
    return (shuffle and rounds > 1) or (invert and pruner not in NON_NEGATIVE_SCORES)


def default_rounds(pruner: str) -> int:
    """A built-in pruner's scoring rounds when none are given: :data:`SYNFLOW_ROUNDS` for SynFlow, one for the
    others (a registered pruner's are its own: :func:`prunelab.core.registry.pruner_rounds`)."""
    return SYNFLOW_ROUNDS if pruner == "synflow" else 1


def no_better_than_chance(top1, majority_top1):
    """Whether a top-1 (%) is no better than always answering the most frequent test class, whose share is
    ``majority_top1`` (%), within :data:`CONSTANT_PREDICTION_MARGIN` points: numbers or pandas columns."""
    return top1 <= majority_top1 + CONSTANT_PREDICTION_MARGIN
