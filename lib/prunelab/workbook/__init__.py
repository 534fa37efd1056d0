"""What the notebooks show, and the one API they call.

The package is split by concern: :mod:`.style` (pruner names, order, colours, plot style), :mod:`.grids`
(the runs each notebook needs, computed when missing), :mod:`.tables`, :mod:`.findings` (sentences
formatted from the tables), :mod:`.figures` and :mod:`.conservation_figures`, and :mod:`.index` (the HTML
front page). A notebook imports this package alone and calls the names below, so moving a function
between those modules never touches a notebook.
"""

from ..core.trace import analyze_trace
from ..runs.amp_timing import AmpTimingSettings, amp_timing_record
from ..runs.int8 import Int8Settings, quantize_record
from ..runs.sparse import SparseSettings, sparse_record
from .conservation_figures import (
    plot_imp_conservation,
    plot_layer_conservation,
    plot_schedule_conservation,
    plot_unit_conservation,
)
from .figures import (
    figure_alt,
    plot_against_compression,
    plot_amp,
    plot_density_and_flops,
    plot_multishot,
    plot_sparse_inference,
    plot_timeline,
    plot_weight_histograms,
    show_figure,
)
from .findings import (
    amp_time_words,
    compression_findings,
    design_speed_words,
    quantization_findings,
    sparse_findings,
    trace_findings,
    tuning_findings,
)
from .grids import (
    SETUPS,
    RunsPending,
    WorkbookParams,
    amp_grid,
    compression_grid,
    dense_grid,
    ensure_runs,
    int8_grid,
    progress_line,
    pruner_variants,
    records_table,
    run_config,
    setup_label,
    trace_config,
    tuning_grid,
)
from .key_results import quantization_key_result, trace_key_result, tuning_key_result
from .numbers import significant, time_cell, times_differ
from .style import DENSE_LABEL, PALETTE, PRUNER_NAMES, column_order, pruner_label, use_style
from .tables import (
    amp_ratios,
    amp_table,
    by_compression,
    collapse_table,
    hardware_markdown,
    int8_table,
    layer_frame,
    metric_table,
    multishot_table,
    record_weights,
    settings_markdown,
    sparse_layer_frame,
    sparse_table,
    stand_in_banner,
    styled,
    table_a,
    table_c,
)
from .timing_tables import (
    amp_timing_frame,
    captioned,
    difference_text,
    table_g,
    table_h,
    table_i,
    table_j,
    table_k,
    table_l,
)

__all__ = [
    "AmpTimingSettings", "amp_time_words", "amp_timing_frame", "amp_timing_record", "captioned", "design_speed_words",
    "difference_text", "significant", "table_g", "table_h", "table_i", "table_j", "table_k", "table_l", "time_cell",
    "times_differ",
    "DENSE_LABEL", "Int8Settings", "PALETTE", "PRUNER_NAMES", "RunsPending", "SETUPS", "SparseSettings",
    "WorkbookParams",
    "amp_grid", "amp_ratios", "amp_table", "analyze_trace", "by_compression", "collapse_table", "column_order",
    "compression_findings", "compression_grid", "dense_grid", "ensure_runs", "figure_alt", "hardware_markdown",
    "int8_grid",
    "int8_table",
    "layer_frame", "metric_table", "multishot_table", "plot_against_compression", "plot_amp",
    "plot_density_and_flops", "plot_imp_conservation", "plot_layer_conservation", "plot_multishot",
    "plot_schedule_conservation", "plot_sparse_inference", "plot_timeline", "plot_unit_conservation",
    "plot_weight_histograms", "progress_line", "pruner_label", "pruner_variants", "quantization_findings",
    "quantize_record",
    "record_weights", "records_table", "run_config", "settings_markdown", "setup_label", "sparse_findings",
    "show_figure", "sparse_layer_frame", "sparse_record", "sparse_table", "stand_in_banner", "styled", "table_a",
    "table_c",
    "trace_config", "trace_findings", "trace_key_result", "quantization_key_result", "tuning_findings", "tuning_grid",
    "tuning_key_result", "use_style",
]
