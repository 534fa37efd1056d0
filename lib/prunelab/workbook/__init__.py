"""What the notebooks show, and the one API they call.

The package is split by concern: :mod:`.style` (pruner names, order, colours, plot style), :mod:`.grids`
(the runs each notebook needs, computed when missing), :mod:`.tables`, :mod:`.findings` (sentences
formatted from the tables), :mod:`.figures`, :mod:`.epoch_curves`, :mod:`.collapse_figures`,
:mod:`.sparse_figures`, :mod:`.ablation_figures`, :mod:`.conservation_figures` and :mod:`.trace_figures`, and
:mod:`.index` (the HTML front page). A notebook
imports this package alone and calls the names below, so moving a function between those modules never touches
a notebook.
"""

# The names are loaded on first use (PEP 562), not when the package is imported: ``python -m
# prunelab.workbook.execute`` and ``.index`` run once per notebook in run_all.sh, and importing every
# module below (torch, matplotlib, scipy) cost each of them seconds before it did anything.
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # never run: the modules named in _API as static imports, for type checkers and import-linter
    from ..core import timing, trace  # noqa: F401
    from ..runs import amp_timing, int8, sparse  # noqa: F401
    from . import (  # noqa: F401
        ablation_figures,
        ablation_words,
        ablations,
        collapse_figures,
        collapse_study,
        collapses,
        conservation_figures,
        epoch_curves,
        figure_output,
        figures,
        findings,
        grids,
        histogram_words,
        key_results,
        layer_findings,
        layer_tables,
        measurement_tables,
        numbers,
        sparse_figures,
        sparse_speed,
        sparse_tables,
        speed_findings,
        style,
        table_headers,
        table_notes,
        tables,
        trace_figures,
        trace_kernels,
        tracing_findings,
    )

_API: dict[str, tuple[str, ...]] = {  # module, relative to this package: the names the notebooks call from it
    "..core.timing": ("TIMING_RULE", "timings_differ"),
    "..core.trace": ("analyze_trace",),
    "..runs.amp_timing": ("AmpTimingSettings", "amp_timing_record"),
    "..runs.int8": ("Int8Settings", "quantize_record"),
    "..runs.sparse": ("SparseSettings", "sparse_record"),
    ".ablations": ("ABLATIONS", "ablation_study", "ablation_table"),
    ".ablation_words": ("ablation_findings", "ablation_key_result", "ablation_table_note"),
    ".conservation_figures": (
        "plot_imp_conservation", "plot_layer_conservation", "plot_schedule_conservation", "plot_unit_conservation",
    ),
    ".figure_output": ("figure_alt", "show_figure"),
    ".epoch_curves": ("plot_epoch_curves",),
    ".ablation_figures": ("plot_ablations",),
    ".figures": (
        "plot_against_compression", "plot_amp", "plot_density_and_flops",
        "plot_multishot", "plot_weight_histograms",
    ),
    ".sparse_figures": ("plot_sparse_inference",),
    ".trace_figures": ("plot_timeline",),
    ".findings": ("equal_flops_note", "tuning_findings"),
    ".collapse_study": ("collapse_study", "collapse_study_findings", "synflow_claim"),
    ".collapse_figures": ("plot_collapse",),
    ".layer_findings": (
        "block_density_key_result", "block_density_words", "compression_findings", "layer_frame", "record_weights",
    ),
    ".histogram_words": ("weight_gap_words",),
    ".sparse_speed": ("sparse_findings",),
    ".speed_findings": ("amp_time_words", "quantization_findings"),
    ".trace_kernels": ("setup_sparse_table",),
    ".tracing_findings": ("conv_costs", "design_speed_words", "trace_capture_words", "trace_findings"),
    ".grids": (
        "ABLATION_FLAGS", "SETUPS", "RunsPending", "WorkbookParams", "ablation_grid", "amp_grid", "compression_grid",
        "dense_grid", "ensure_runs", "int8_grid", "progress_line", "pruner_variants", "records_table", "run_config",
        "setup_label", "stand_in_note", "stand_in_timing_note", "trace_config", "tuning_grid",
    ),
    ".collapses": ("collapse_table", "collapse_table_note"),
    ".key_results": ("quantization_key_result", "trace_key_result", "tuning_key_result"),
    ".numbers": ("significant", "time_cell"),
    ".style": ("DENSE_LABEL", "FLOPS", "column_order", "palette", "pruner_label", "pruner_name", "use_style"),
    ".tables": (
        "accuracy_at_compression", "accuracy_table", "amp_ratios", "amp_table", "by_compression", "hardware_markdown",
        "int8_table", "machine_caption", "metric_table", "multishot_table", "settings_markdown", "stand_in_banner",
        "styled",
    ),
    ".sparse_tables": ("inference_time_parts", "inference_time_table", "pair_rule_note", "sparse_layer_frame",
                       "sparse_table"),
    ".measurement_tables": (
        "amp_relative_caption", "amp_relative_table", "amp_timing_frame", "amp_training_caption", "amp_training_table",
        "captioned", "conv_layer_caption", "conv_layer_table", "design_comparison_table", "difference_text",
        "int8_comparison_caption", "int8_comparison_table", "int8_timing_caption", "int8_timing_table",
        "step_kind_table",
    ),
    ".layer_tables": ("focus_layer_table", "layer_density_table"),
    ".table_headers": ("table_style",),
    ".table_notes": ("UNROUNDED_RATIOS",),
}
_MODULE_OF = {name: module for module, names in _API.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_MODULE_OF[name], __name__), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
