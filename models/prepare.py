"""Turn a folder of photos into face crops like the shared data: ``python -m models.prepare SRC DST``.

SRC is laid out as ``{real,fake}/`` or ``{train,val,test}/{real,fake}/`` (any depth below, any format the
intake reads). Each photo's largest face is cropped with the data's recipe (models.faces: mtcnn, a square
1.3x the face box, kept inside the image, Lanczos to 128 px) and saved as JPEG quality 90 under DST with the
same layout; with no face the centre square is used (``face_found=0``). DST/manifest.csv has the shared
data's columns. Bad files are reported on stderr and skipped; exit status 2 if any failed.
"""

from __future__ import annotations

import argparse
import sys

from models.data.prepare import prepare


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.prepare", description=__doc__.split("\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--crop", default="auto", choices=("auto", "face", "none"),
                   help="auto (default): largest face, centre square if none; face: skip photos without a face; "
                        "none: centre square of every photo")
    p.add_argument("--source", default=None, help="source name for the manifest (default: from file names or SRC)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        n, errors = prepare(args.src, args.dst, args.size, args.crop, args.source)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"wrote {n} crops and manifest.csv to {args.dst}" + (f"; {len(errors)} file(s) failed" if errors else ""))
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
