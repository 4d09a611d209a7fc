"""Soak run (issue 16, item 6; a benchmark, never in CI): many sequential Predict sessions against one server.

Starts the app like ``bench/bench_load.py`` and runs ``--sessions`` (200) sessions one after another, each in a
new browser context of one headless Debian chromium: open /predict, pick "Upload", upload one of 8 face images
made here from ``skimage.data.astronaut()`` (in turn), wait for the verdict and the P(fake) metric, close the
context. The server's RSS (VmRSS summed over its process tree) is read before the first session, after the
first, every ``--every`` (20) sessions, after the last and again after ``--settle`` seconds (Streamlit keeps a
disconnected session's state for ``server.disconnectedSessionTTL``, 120 s by default). Growth is judged on the
checkpoints after the first block (the model, mtcnn and TensorFlow load on the first session): the growth of
the second half of the run against the first half says whether memory levels off. Each image must show the same
P(fake) every time it is uploaded (a cheap isolation check; bench_load.py checks against the CLI).

Usage: nice -n 5 .venv/bin/python bench/bench_soak.py [--sessions 200] [--every 20] [--settle 130]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import CHROMIUM, CHROMIUM_ARGS, log_trouble, make_images, rss_bytes, start_app, stop_app, tree  # noqa: I001,E501

MIB = 2**20


def one_session(browser, url: str, path: Path, timeout_s: float) -> tuple[float, float | None, list[str]]:
    """One Predict session: (seconds from upload to verdict, P(fake) shown, errors)."""
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    errors: list[str] = []
    try:
        page.goto(f"{url}/predict", wait_until="domcontentloaded")
        page.get_by_text("Upload", exact=True).click(timeout=timeout_s * 1000)
        page.locator('input[type="file"]').set_input_files(str(path))
        t0 = time.perf_counter()
        metric = page.locator('[data-testid="stMetric"]', has_text="P(fake)")
        expect(metric).to_contain_text(re.compile(r"\d+\.\d%"), timeout=timeout_s * 1000)
        expect(page.locator("h3", has_text="Verdict:")).to_contain_text(re.compile("FAKE|REAL"),
                                                                          timeout=timeout_s * 1000)
        seconds = time.perf_counter() - t0
        m = re.search(r"(\d+\.\d)%", metric.first.inner_text())
        shown = float(m.group(1)) / 100 if m else None
        for sel, what in (('[data-testid="stException"]', "exception"), ('[data-testid="stAlertContentError"]',
                                                                          "st.error")):
            errors += [f"{what}: {t[:200]}" for t in page.locator(sel).all_inner_texts()]
        return seconds, shown, errors
    except Exception as exc:  # a benchmark records every failure and goes on
        return float("nan"), None, [f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"]
    finally:
        ctx.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--every", type=int, default=20, help="read the server's RSS every this many sessions")
    ap.add_argument("--settle", type=float, default=130.0,
                    help="seconds to wait after the last session before the final reading (session TTL: 120 s)")
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    images = make_images(tmp, 8)
    print(f"cores {os.cpu_count()}, load average before {os.getloadavg()}")
    proc, url = start_app(tmp / "streamlit.log")
    rss = lambda: rss_bytes(tree(proc.pid))  # noqa: E731
    checkpoints = [(0, rss())]
    times, shown, errors = [], {}, []
    t_start = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for i in range(1, args.sessions + 1):
                path = images[(i - 1) % len(images)]
                seconds, p, errs = one_session(browser, url, path, args.timeout)
                times.append(seconds)
                errors += [f"session {i}: {e}" for e in errs]
                if p is not None:
                    shown.setdefault(path.name, set()).add(p)
                if i == 1 or i % args.every == 0 or i == args.sessions:
                    checkpoints.append((i, rss()))
                    print(f"  after {i:4d} sessions: server RSS {checkpoints[-1][1] / MIB:7.0f} MiB, last verdict "
                          f"{seconds:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)
            browser.close()
        wall = time.perf_counter() - t_start
        time.sleep(args.settle)
        settled = rss()
    finally:
        stop_app(proc)

    after_first = checkpoints[1][1]
    last = checkpoints[-1][1]
    blocks = [c for c in checkpoints[1:] if c[0] == 1 or c[0] % args.every == 0]
    mid = blocks[len(blocks) // 2][1]
    first_half, second_half = mid - after_first, last - mid
    good = [t for t in times if t == t]
    inconsistent = {k: sorted(v) for k, v in shown.items() if len(v) > 1}
    print(f"\n{args.sessions} sessions in {wall:.0f} s; time to verdict median {statistics.median(good):.2f} s, "
          f"max {max(good):.2f} s; {len(errors)} errors; load after {os.getloadavg()}")
    print(f"server RSS: before {checkpoints[0][1] / MIB:.0f} MiB, after session 1 {after_first / MIB:.0f} MiB, after "
          f"{args.sessions} {last / MIB:.0f} MiB, after {args.settle:.0f} s idle {settled / MIB:.0f} MiB")
    print(f"growth after session 1: {(last - after_first) / MIB:+.0f} MiB "
          f"(first half {first_half / MIB:+.0f} MiB, second half {second_half / MIB:+.0f} MiB: "
          f"{'levels off' if second_half <= max(first_half, 0) * 0.5 + 16 * MIB else 'still growing'}); "
          f"after settling {(settled - after_first) / MIB:+.0f} MiB")
    print(f"each image shows one P(fake) every time: {'yes' if not inconsistent else inconsistent}")
    for e in errors[:20]:
        print(f"  {e}")
    trouble = log_trouble(tmp / "streamlit.log", r"Traceback|Error|Exception", show=20)
    if args.json:
        args.json.write_text(json.dumps({
            "checkpoints_mib": [(i, round(b / MIB)) for i, b in checkpoints], "settled_mib": round(settled / MIB),
            "times": times, "errors": errors, "wall_s": wall, "inconsistent": inconsistent, "log_trouble": trouble[:50],
            "load_after": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
