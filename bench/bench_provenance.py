"""What reading provenance costs beside decoding: models.data.provenance.read_provenance vs models.data.intake's
load_image on the same files, in this process.

Files: test-split crops of the dataset (128 px JPEGs, no metadata: the common case in a batch), a 2,000 px photo
with camera EXIF and XMP, and the same photo carrying signed Content Credentials (signed now with a throwaway
certificate). Prints milliseconds per file for each and the ratio provenance / decode (the baseline).

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_provenance.py [--n 500]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn, items, repeat: int = 1) -> float:
    fn(items[0])  # warm: the first call loads libraries (c2pa's native one)
    start = time.perf_counter()
    for _ in range(repeat):
        for item in items:
            fn(item)
    return (time.perf_counter() - start) / (len(items) * repeat) * 1000.0


def photos() -> dict[str, bytes]:
    import numpy as np
    from PIL import Image
    from skimage import data

    from tests.c2pa_util import signed_jpeg, xmp_packet

    big = np.asarray(Image.fromarray(data.astronaut()).resize((2000, 2000), Image.LANCZOS))
    exif = Image.Exif()
    exif[271], exif[272], exif[305] = "Canon", "Canon EOS 5D", "Adobe Photoshop 25.0"
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="JPEG", quality=92, exif=exif.tobytes(), xmp=xmp_packet(creator_tool="X"))
    return {"2000 px photo, EXIF + XMP": buf.getvalue(), "2000 px photo, Content Credentials": signed_jpeg(buf.getvalue())}


def main() -> int:
    from models.data.files import data_root, list_files
    from models.data.intake import load_image
    from models.data.provenance import read_provenance

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    crops = [Path(p).read_bytes() for p in list_files(data_root(), "test").paths[: args.n]]
    print(f"{'files':<38} {'decode ms':>10} {'provenance ms':>14} {'ratio':>6}")
    cases = {f"{len(crops)} dataset crops (no metadata)": crops}
    cases.update({name: [data] for name, data in photos().items()})
    for name, items in cases.items():
        repeat = 1 if len(items) > 1 else 10
        decode = timed(load_image, items, repeat)
        prov = timed(read_provenance, items, repeat)
        print(f"{name:<38} {decode:10.2f} {prov:14.2f} {prov / decode:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
