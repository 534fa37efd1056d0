"""The report's terms (glossary.TERMS) against the words the pages print."""

from prunelab.core.choices import DENSE_LABEL
from prunelab.workbook.glossary import TERMS


def test_the_terms_tell_the_unpruned_network_from_dense_kernels_and_storage():
    """The tables name the network before pruning by DENSE_LABEL, and the pages say "dense" of kernels, sizes and
    FLOPs that count every weight: two entries, the second not a name for the first."""
    terms = {term.lower(): meaning for term, meaning in TERMS}
    assert DENSE_LABEL.lower() in terms and DENSE_LABEL in terms[DENSE_LABEL.lower()]
    dense = terms["dense"]
    assert all(use in dense for use in ("kernels", "fp32 dense", "FLOPs"))
    assert not dense.lower().startswith(("the unpruned", "the network"))
