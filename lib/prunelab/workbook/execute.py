"""Execute one workbook notebook with papermill, as ``run_all.sh`` does for each notebook.

    python -m prunelab.workbook.execute NOTEBOOK OUTPUT --params FILE [--result-dir DIR] [--kernel NAME]

It is papermill's own ``execute_notebook`` with one difference from its command line: the kernel's
connection is encrypted (CurveZMQ keys provisioned by jupyter_client, where the kernel and jupyter_client
support it). Over plain TCP every kernel started warns that its traffic is readable by anyone on the
machine; the workbook runs on shared machines, so the traffic is encrypted rather than the warning hidden.
A failing cell is rendered into OUTPUT with its error, and this exits 1 with one line naming the error; a
parameter file the notebook cannot take (:mod:`prunelab.workbook.params`) exits 2 before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from .params import read_params
from .startup import skip_unused_iri_grammar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--params", required=True, help="a YAML file of the notebook's parameters")
    parser.add_argument("--result-dir", help="overrides the parameter file's result_dir")
    parser.add_argument("--kernel", default="prunelab")
    args = parser.parse_args(argv)

    skip_unused_iri_grammar()
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    try:
        parameters = read_params(Path(args.params), Path(args.notebook))
    except UserError as err:
        print(f"prunelab: error: {err}", file=sys.stderr)
        return 2
    if args.result_dir:
        parameters["result_dir"] = args.result_dir
    # "auto": encrypt where the kernelspec declares CurveZMQ support (ipykernel's does); older
    # jupyter_client versions without this setting ignore it and run unencrypted, as before
    config = Config({"KernelManager": {"transport_encryption": "auto"}})
    try:
        papermill.execute_notebook(args.notebook, args.output, parameters=parameters, kernel_name=args.kernel,
                                   cwd=".", progress_bar=False, config=config)
    except PapermillExecutionError as error:
        print(f"{args.notebook}: cell {error.exec_count} failed: {error.ename}: {error.evalue}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
