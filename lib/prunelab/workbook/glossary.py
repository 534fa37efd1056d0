"""The report's terms, each in one or two sentences: the PDF prints them as an appendix and the front page links
them, so a reader meets "compression 2", "near collapse" or "median ± half range" once explained.

The entries say what the code computes (the module named in each is where), not what a paper means by the word;
docs/pruners.md gives every pruner's score in full. :data:`TERMS` is the one list; :func:`glossary_html` prints it.
"""

from __future__ import annotations

import html

from ..core.choices import CHANCE_RULE, DATA_FREE_NAMES, DATA_FREE_WHY, DENSE_LABEL
from ..core.timing import ALPHA as RANK_ALPHA
from ..core.timing import MARGIN
from .ablations import ABLATIONS, AS_SCORED, NEAR_COLLAPSE_SHARE
from .numbers import ALPHA, AT_CHANCE
from .sparse_tables import NOISY_DENSE, NOISY_DENSE_RUNS, NOISY_MARK
from .style import FLOPS

#: (term, meaning), grouped as a reader meets them: pruning, accuracy, the statistics, time, precision, running
TERMS: tuple[tuple[str, str], ...] = (
    ("compression c", "A run keeps a fraction 10 to the power −c of the prunable weights, those with the highest "
     "scores over all layers together: " + ", ".join(f"c = {c:g} keeps {100 * 10 ** -c:.2g}%" for c in (0.5, 1, 2, 3))
     + "."),
    ("prunable weights", "The convolution and linear weights. Biases and batch norm are not pruned unless a run says "
     "so."),
    ("density", "The share of a layer's weights kept. A pruner sets each layer's density by where its scores "
     "fall, so layers can end at very different densities (Rand's all sit near the target)."),
    ("score, score mean, score sd", "The number a pruner gives each prunable weight when it prunes, the weights with "
     "the highest scores being kept; each pruner computes its own (see the next entry), on its own scale. Table H "
     "gives, per layer, the mean and the standard deviation of the scores of the pruner's last round over all the "
     "layer's weights, those pruned in an earlier round included, as the run recorded them."),
    ("Rand, Mag, SNIP, GraSP, SynFlow, ProsPr", "The pruners: random scores; weight magnitude after pre-training; "
     "connection sensitivity |gradient × weight|; gradient signal preservation; synaptic flow over an all-ones "
     "input; and, where the parameters list it, ProsPr (prospect pruning, a plugin): how much the loss after a few "
     f"steps of training depends on each weight. {DATA_FREE_NAMES} never read the data ({DATA_FREE_WHY}). "
     "docs/pruners.md gives each score's formula."),
    ("SynFlow (1 round), (100 rounds)", "SynFlow scores and prunes once (the original tool's setting) or in 100 "
     "rounds, each removing a little more and scoring again, as its paper prescribes."),
    ("exponential schedule", "How the kept fraction shrinks over the rounds of a pruning in several rounds (SynFlow's "
     "100): by the same factor each round, from what is kept at the start to the target, so that early rounds "
     "remove more weights than late ones. A linear schedule, the other choice, removes the same share each round."),
    (DENSE_LABEL.lower(), "The network before pruning, every weight kept, trained as the pruned runs are: the "
     f"reference each pruner is compared with (the tables' {DENSE_LABEL} column). Mag's dense pre-training trains "
     "it before pruning it."),
    ("dense", "Computing or storing every weight of a layer, a pruned one as a zero: dense kernels (plain matrix "
     "products and convolutions) do the same work at every compression, a dense size (fp32 dense) stores every "
     "weight, and a layer's dense FLOPs are those it performs with every weight, before pruning. Sparse kernels and "
     "sizes skip the zeros."),
    ("top-1", "The share of test images whose highest-scored class is the true one."),
    (AT_CHANCE, f"A run is {AT_CHANCE} when its top-1 is {CHANCE_RULE}. The records hold the accuracy, not which "
     "classes a run answered, so the words claim a score, not that the run answers one class."),
    ("collapse", f"A run has collapsed when a layer kept no weight, or when it is {AT_CHANCE}. The sanity checks' "
     f"tests beside collapsed runs are those beside runs {AT_CHANCE}: not told apart there, a difference is "
     "neither a tie nor a finding, whatever its size."),
    ("near collapse", f"A pruner {AS_SCORED} is near collapse where it keeps less than {NEAR_COLLAPSE_SHARE:.0%} of "
     "the lead in top-1 over always answering the most frequent class that it had at its set-up's lowest "
     "compression. There, a tie with its ablations says little."),
    ("ablation", f"A run that changes one thing of a pruner's run, compared with the pruner {AS_SCORED}: "
     f"{ABLATIONS['shuffle']} (each layer's mask permuted: its density kept, its pattern lost), "
     f"{ABLATIONS['reinitialize']} (fresh weights at the kept positions), {ABLATIONS['invert']} (the lowest "
     "scores kept: a different pruning, whose layers end at other densities)."),
    ("seed", "A run's seed fixes its initial weights, its pruning batch and its data order. Accuracies are given "
     "over several seeds."),
    ("mean ± sd (n)", "The mean over n seeds ± their standard deviation. Where every cell of a table has the "
     "same n, its caption gives n once and the cells leave it out."),
    ("Welch's t-test, Holm-adjusted", "Whether two accuracies differ beyond their seeds' spread. The p-values of "
     "one finding's comparisons are adjusted together (Holm), so that several comparisons at once do not make a "
     f"chance difference look real. Below {ALPHA:g}: told apart; above: not told apart, which is not the same "
     "as equal: with few seeds a large difference can fail the test."),
    ("median ± half range (n)", "A time: the median of n timed passes ± half the distance from the fastest to "
     "the slowest pass."),
    ("rank test", "A two-sided Mann-Whitney test of two designs' timed passes, taken in turns. One time is called "
     f"shorter than another only where it gives p < {RANK_ALPHA:g}; otherwise the difference is within noise."),
    ("stand-in data", "Synthetic images in place of a data set this machine cannot have. Runs on it check that the "
     "pipeline works. Their accuracies are not results."),
    (FLOPS, "Floating-point operations, counted as multiply-adds: a weight's multiply-accumulate at one output "
     "counts one, so the number is half of what counting multiplies and adds apart gives."),
    ("busy time, wall span", "Of a traced step: the time at least one op (or GPU kernel) runs, and the time from the "
     "step's first op starting to its last ending. Gaps count in the span only."),
    ("Perfetto", "A trace viewer (ui.perfetto.dev; chrome://tracing reads the same file). The profiled steps are "
     "saved as trace.json in the run's record, PyTorch profiler's Chrome trace, to be opened there; the analysed "
     "step is the one of median length among them."),
    ("units, host ops", "The pieces of work a traced step is counted in (Tables F and G): on the CPU each top-level "
     "op the host (the CPU thread driving the step) runs, the host ops of Figure 2; on a GPU each kernel or memory "
     "copy the host launched."),
    ("mask multiply, folded masks", "The original tool multiplies each mask into its weights in every forward pass. "
     "prunelab zeroes the pruned weights once, when pruning (folded), so inference runs plain layers."),
    ("sparse kernels", "Layers run as sparse matrix products over the kept weights only. They pay only at low "
     "density, and how much depends on the CPU."),
    ("compact", "The sparse kernel that keeps a layer dense but narrower: a dense product over only the input "
     "channels and outputs that still have kept weights. \"n to compact\": n layer choices switched to it. A layer "
     f"leaves dense only for a kernel timed to take at most {1 - MARGIN:.0%} of dense's time."),
    ("dead units", "Neurons or channels with no kept weight coming in or going out: they carry nothing (or a "
     "constant, folded into the next layer's bias). Before timing on sparse kernels they are removed, exactly, "
     "which narrows the dense layers on both sides; the removal stands only where the whole model runs faster "
     "for it."),
    (f"{NOISY_MARK} (Tables C and C2)", f"Marks a dense-kernel time more than {NOISY_DENSE:.0%} above or below the "
     f"median dense time of its set-up at that compression (judged where {NOISY_DENSE_RUNS} runs or more share "
     "it). Every "
     "pruner's dense model there does the same arithmetic, so such a time is taken as noise, and that run's two "
     "times are not compared."),
    ("CSR / BSR", "Compressed sparse row: a matrix stored as its kept values, their column indices and where each "
     "row starts, multiplied by a sparse kernel. Block sparse row: the same over small dense blocks."),
    ("eager fp32, compiled fp32, int8", "The trained network in 32-bit floats run op by op (eager) or through "
     "torch.compile; int8 is the network quantized to 8-bit integers after training (PyTorch's PT2E flow, which "
     "compiles, where it runs)."),
    ("PT2E, torchao", "PyTorch 2 Export quantization, from the torchao library: the model is captured with "
     "torch.export, quantized to int8 for x86 CPUs and compiled by torch.compile. Where torchao cannot run, int8 "
     "takes PyTorch's older torch.ao path, which compiles nothing; Table L names the path each run took."),
    ("x86 inductor quantizer", "torchao's X86InductorQuantizer: it marks where PT2E puts int8, weights symmetric "
     "per channel and activations uint8 calibrated on training batches, in the form inductor turns into x86 int8 "
     "kernels."),
    ("inductor freezing", "torch.compile's inductor with freezing on: the weights are taken as constants, so they "
     "are packed once for the CPU's kernels and each dequantize-convolution-quantize fuses into one int8 kernel. "
     "The compiled fp32 baseline of Table L2 is compiled the same way."),
    ("FX graph mode", "torch.ao's fallback int8 path for a model that is not a plain nn.Sequential (ResNet20 here): "
     "it traces the model into a graph with torch.fx, which lets it turn the residual additions into int8 additions. "
     "A Sequential (the convolutional network) takes eager mode, module by module."),
    ("VNNI, AMX", "x86 CPU units for low-precision products. VNNI (avx512_vnni or avx_vnni) speeds int8 dot "
     "products; AMX has tile units for int8 and bf16 matrix products (amx_int8, amx_bf16). PyTorch's x86 int8 "
     "kernels run on AVX2 too and go faster with VNNI or AMX. Timing captions name the vector units of the CPU "
     "that took the times."),
    ("AMP", "Automatic mixed precision: training with matrix products in 16-bit floats (bf16 or fp16) and the "
     "weights kept in fp32."),
    ("peak memory, RSS", "On a GPU, the most memory CUDA tensors held during training. On a CPU, the peak resident "
     "set size (RSS) of the whole process that trained the run: all it held in RAM, the Python runtime, PyTorch and "
     "earlier runs' leftovers included. So on a CPU Table J compares the precisions by the peak tensor memory of a "
     "timed pass of training steps instead, which PyTorch's profiler measures for each in one process."),
    ("speed-up", "The baseline's median time over the design's, so more is faster: int8 at 2.0x over fp32 took half "
     "fp32's time, and below 1.0x it took longer. A time ratio (AMP / fp32 in Table K) goes the other way: above "
     "1.0x the design took longer."),
    ("fused (M runs)", "M runs of one set-up trained together as one network with M stacked copies of the weights. "
     "Each run keeps its own masks, weights, data order and record, so its accuracies and losses are those of a "
     "run trained alone, to rounding; its time is the group's wall time over M and its peak memory the group's."),
)


def glossary_html() -> str:
    """The terms as a definition list, for the PDF's appendix and the front page."""
    items = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(meaning)}</dd>" for term, meaning in TERMS)
    return f'<dl class="glossary">{items}</dl>'
