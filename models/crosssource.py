"""Leave-one-source-out study: how does a recipe do on a source of fakes it never saw?

``python -m models.crosssource --arch spectrum`` (seconds) or ``--arch v1 --epochs 4`` (the default
recipe on a reduced budget; about an hour on 2 CPU cores, so run it in the background).

For every source, a model is trained with that source left out of train and val (``models.train
--exclude-source``), plus one reference model trained on all sources with the same budget. Each is scored
on the whole test split. For every source the table then holds, for the model that saw it and the one that
did not: the share of its fakes caught at 0.5 and the ROC AUC of its fakes against the test reals (its own
reals when it has at least 20, else all test reals). A large drop from "seen" to "held out" means the
model learned something specific to that source, not a general trace of manipulation.

Results are merged into ``assets/models/crosssource.json`` under the architecture's key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.training.crosssource import OUT_FILE, format_rows, merge, run


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.crosssource", description=__doc__.split("\n")[0])
    p.add_argument("--arch", required=True, help="architecture (spectrum, v1, tuned, ...)")
    p.add_argument("--data", default=None, help="dataset root (default $DEEPFAKE_DATA)")
    p.add_argument("--epochs", type=int, default=4, help="epoch budget per model (CNNs)")
    p.add_argument("--sources", default=None, help="comma-separated sources to hold out (default: every fake source)")
    p.add_argument("--out", default=str(OUT_FILE), help=f"JSON to merge the results into (default {OUT_FILE})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        held = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
        results = run(args.arch, args.data, args.epochs, held, args.seed, args.quiet)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    merge(Path(args.out), results)
    print(format_rows(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
