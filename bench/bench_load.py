"""The app under load (issue 16, item 5): 8 browser sessions on Predict and Explain at once.

Starts the app (``streamlit run streamlit_app.py``) on a free port on 127.0.0.1 and drives it from one headless
Debian chromium (Playwright, launched like ``tests/test_browser.py``), one browser context per session:

1. a warm-up session (untimed: the first request loads the model, mtcnn and TensorFlow);
2. one session alone: the baseline;
3. ``--sessions`` (8) sessions at once. Each opens /predict, picks "Upload" in the "Image" radio and waits until
   the uploader is there; then all upload together (a barrier), each a DIFFERENT face image made here from
   ``skimage.data.astronaut()`` (crop shifts, flips, colour gains; never dataset images).

Per session: time to verdict (from ``set_input_files`` returning to the verdict heading and the P(fake) metric),
then "Explain this face" and the time until the Explain page says "Explained"; while waiting, every 0.5 s, the
status, progress and queue texts on the page (a queue message matches ``Waiting for N other``); errors
(``stException`` and ``st.error`` boxes). Leak check: every image's P(fake) is scored here with the CLI's path
(``models.scoring.stream.score_paths``) and compared with what each session displayed, on Predict and on
Explain (shown to 0.1%: tolerance 0.0006), and each page must show the session's own file name.

Server: peak RSS of the streamlit process tree (VmRSS summed over the tree from /proc, every 0.25 s) and CPU
seconds of the server and of the browser; machine: load average and cores.

Usage: nice -n 5 .venv/bin/python bench/bench_load.py [--sessions 8] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from proctree import children_map  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TARGET_VERDICT_S = 6.0
TARGET_EXPLAIN_S = 30.0
TARGET_RSS_BYTES = 4 * 1024**3
TOLERANCE = 0.0006  # the page shows P(fake) to 0.1 %
QUEUE_RE = re.compile(r"Waiting for \d+ other[^…\n]{0,80}…?")
PAGE_POLL_S = 0.5
RSS_POLL_S = 0.25

# Status, progress and queue texts on the page; errors. One call per poll.
PROBE_JS = """() => {
  const texts = s => Array.from(document.querySelectorAll(s)).map(e => e.textContent.trim()).filter(t => t);
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  return {
    status: texts('[data-testid="stMain"] [data-testid="stExpander"] summary [data-testid="stMarkdownContainer"]'),
    progress: texts('[data-testid="stMain"] [data-testid="stProgress"]'),
    alerts: texts('[data-testid="stMain"] [data-testid="stAlertContainer"]'),
    queue: main.textContent.match(/Waiting for \\d+ other[^…\\n]{0,80}…?/g) || [],
    exceptions: texts('[data-testid="stException"]'),
    failed: Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stExpander"] summary'))
      .filter(e => e.querySelector('[data-testid="stExpanderIconError"]')).map(e => e.textContent.trim()),
    errors: texts('[data-testid="stAlertContentError"]'),
  };
}"""


# --------------------------------------------------------------------------------------------------- images


def make_images(folder: Path, n: int) -> list[Path]:
    """``n`` distinct face photos (256 px) cut from skimage's astronaut: shifted crops, flips, colour gains."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photo = data.astronaut().astype(np.float32)
    paths = []
    for i in range(n):
        y0, x0 = 4 * (i % 4), 128 + 6 * ((i * 3) % 7) - 18
        crop = photo[y0:y0 + 256, x0:x0 + 256]
        if i % 2:
            crop = crop[:, ::-1]
        gain = 1.0 + 0.08 * np.array([np.sin(i + 0.5), np.cos(1.7 * i), np.sin(2.3 * i + 1.0)], np.float32)
        pixels = np.clip(crop * gain + 4.0 * (i % 3 - 1), 0, 255).astype(np.uint8)
        path = folder / f"load_face_{i + 1}.png"
        Image.fromarray(np.ascontiguousarray(pixels)).save(path)
        paths.append(path)
    return paths


class CliScores:
    """P(fake) of each image by the CLI's path (score_paths), per model, loaded on first use."""

    def __init__(self, paths: list[Path]):
        self.paths = [str(p) for p in paths]
        self.by_model: dict[str, dict[str, float]] = {}

    def model(self, name: str | None = None) -> dict[str, float]:
        from models import default_model_name, load_model
        from models.scoring.stream import score_paths

        name = name or default_model_name()
        if name not in self.by_model:
            detector = load_model(name)
            self.by_model[name] = {Path(s.path).name: s.p_fake for s in score_paths(detector, self.paths)}
        return self.by_model[name]

    def of(self, model: str | None, image: str) -> float | None:
        return self.model(model).get(image)


# --------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(log: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Serve the app like ``make run`` (headless, 127.0.0.1); returns the process and its URL once healthy."""
    port = port or free_port()
    cmd = [str(REPO / ".venv/bin/python"), "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    fh = open(log, "w")  # kept open for the server's life
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def log_trouble(path: Path, pattern: str, show: int = 30) -> list[str]:
    """The server log's lines matching ``pattern``, printed (the first ``show``) and returned."""
    log = path.read_text(errors="replace")
    trouble = [line for line in log.splitlines() if re.search(pattern, line)]
    print(f"\nserver log: {len(log.splitlines())} lines, {len(trouble)} matching {pattern}")
    for line in trouble[:show]:
        print(f"  {line[:300]}")
    return trouble


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def cpu_seconds(pids: list[int]) -> float:
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


class RssSampler(threading.Thread):
    """Peak RSS of a process tree (and the highest 1-minute load average), sampled every 0.25 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.last, self.peak_load = pid, 0, 0, 0.0
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        while self.running.is_set():
            self.last = rss_bytes(tree(self.pid))
            self.peak = max(self.peak, self.last)
            self.peak_load = max(self.peak_load, os.getloadavg()[0])
            time.sleep(RSS_POLL_S)

    def reset(self) -> None:
        self.peak, self.peak_load = self.last, os.getloadavg()[0]

    def stop(self) -> None:
        self.running.clear()


# --------------------------------------------------------------------------------------------------- sessions


@dataclass
class Session:
    index: int
    image: str
    model: str | None = None
    verdict_s: float | None = None
    verdict: str | None = None
    shown_p: float | None = None  # Predict's P(fake) metric
    explain_s: float | None = None
    summary_s: float | None = None  # "Summary ready" first seen, from the click
    explain_p: float | None = None  # Explain's P(fake) metric
    saw_status: list[str] = field(default_factory=list)  # distinct status / progress texts while explaining
    saw_queue: list[str] = field(default_factory=list)  # distinct "Waiting for N others" messages
    queued_until_s: float | None = None  # a queue message last seen, from the click
    errors: list[str] = field(default_factory=list)
    own_name_shown: bool = True  # both pages showed this session's own file name
    cli_p: float | None = None

    @property
    def saw_progress(self) -> bool:
        return bool(self.saw_status or self.saw_queue)

    def match(self) -> bool | None:
        if self.cli_p is None or self.shown_p is None:
            return None
        ok = abs(self.shown_p - self.cli_p) <= TOLERANCE
        if self.explain_p is not None:
            ok = ok and abs(self.explain_p - self.cli_p) <= TOLERANCE
        return ok and self.own_name_shown


def _percent(text: str) -> float | None:
    m = re.search(r"(\d+(?:\.\d+)?)%", text)
    return float(m.group(1)) / 100 if m else None


async def _errors(page) -> list[str]:
    found = await page.evaluate(PROBE_JS)
    return [f"exception: {t[:300]}" for t in found["exceptions"]] + [f"st.error: {t[:300]}" for t in found["errors"]]


async def open_upload(page, url: str, timeout_s: float) -> None:
    """Open Predict and switch the "Image" radio to Upload; returns once the uploader is there."""
    await page.goto(f"{url}/predict", wait_until="domcontentloaded")
    await page.get_by_text("Upload", exact=True).click(timeout=timeout_s * 1000)
    await page.locator('input[type="file"]').wait_for(state="attached", timeout=timeout_s * 1000)


async def upload_and_verdict(page, s: Session, path: Path, timeout_s: float) -> None:
    """Upload ``path``; fill ``s.verdict_s``, ``s.verdict``, ``s.shown_p`` and ``s.model``."""
    from playwright.async_api import expect

    await page.locator('input[type="file"]').set_input_files(str(path))
    t0 = time.perf_counter()
    metric = page.locator('[data-testid="stMetric"]', has_text="P(fake)")
    await expect(metric).to_contain_text(re.compile(r"\d+\.\d%"), timeout=timeout_s * 1000)
    heading = page.locator("h3", has_text="Verdict:")
    await expect(heading).to_contain_text(re.compile("FAKE|REAL"), timeout=timeout_s * 1000)
    s.verdict_s = time.perf_counter() - t0
    s.shown_p = _percent(await metric.first.inner_text())
    s.verdict = "FAKE" if "FAKE" in await heading.first.inner_text() else "REAL"
    sees = page.get_by_text(re.compile(r"^What \S+ sees"))
    m = re.search(r"What (\S+) sees", await sees.first.inner_text()) if await sees.count() else None
    s.model = m.group(1) if m else None
    if await page.get_by_text(f"{path.name} (", exact=False).count() == 0:
        s.own_name_shown = False
        s.errors.append(f"Predict does not show {path.name}")
    s.errors += await _errors(page)


async def explain(page, s: Session, path: Path, timeout_s: float) -> None:
    """Click "Explain this face" and wait for "Explained", probing the page every 0.5 s."""
    await page.get_by_role("button", name="Explain this face").click(timeout=timeout_s * 1000)
    t0 = time.perf_counter()
    done = page.get_by_text("Explained", exact=True)
    while time.perf_counter() - t0 < timeout_s:
        found = await page.evaluate(PROBE_JS)
        for text in found["status"] + found["progress"]:
            if text != "Explained" and not text.startswith("P(fake) =") and text not in s.saw_status:
                s.saw_status.append(text)
            if text == "Summary ready" and s.summary_s is None:
                s.summary_s = time.perf_counter() - t0
        texts = found["queue"] + found["status"] + found["progress"] + found["alerts"]
        for text in (m.group(0) for t in texts if (m := QUEUE_RE.search(t))):
            if text not in s.saw_queue:
                s.saw_queue.append(text)
            s.queued_until_s = time.perf_counter() - t0
        if found["failed"]:  # a phase ended in error (the queue's one-line "busy" among them)
            s.errors += [f"status error: {t[:200]}" for t in found["failed"]]
            return
        if found["exceptions"] or found["errors"]:
            s.errors += await _errors(page)
            return
        if await done.count() and await done.first.is_visible():
            s.explain_s = time.perf_counter() - t0
            break
        await asyncio.sleep(PAGE_POLL_S)
    else:
        s.errors.append(f"no 'Explained' within {timeout_s:.0f} s")
        return
    metric = page.locator('[data-testid="stMetric"]', has_text="P(fake)")
    if await metric.count():
        s.explain_p = _percent(await metric.first.inner_text())
    if await page.get_by_text(path.name, exact=False).count() == 0:
        s.own_name_shown = False
        s.errors.append(f"Explain does not show {path.name}")
    s.errors += await _errors(page)


async def run_session(browser, url: str, s: Session, path: Path, barrier: asyncio.Barrier, args) -> Session:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    ready = False
    try:
        try:
            await open_upload(page, url, args.timeout)
            ready = True
        except Exception as exc:  # a benchmark records every failure
            s.errors.append(f"opening Predict: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        await barrier.wait()  # upload together
        if ready:
            try:
                await upload_and_verdict(page, s, path, args.timeout)
                await explain(page, s, path, args.explain_timeout)
            except Exception as exc:
                s.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                s.errors += await _errors(page)
    finally:
        await ctx.close()
    return s


async def run_phase(browser, url: str, images: list[Path], first_index: int, args) -> list[Session]:
    barrier = asyncio.Barrier(len(images))
    sessions = [Session(first_index + i, p.name) for i, p in enumerate(images)]
    return list(await asyncio.gather(*(run_session(browser, url, s, p, barrier, args)
                                       for s, p in zip(sessions, images))))


# --------------------------------------------------------------------------------------------------- report


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def print_table(title: str, sessions: list[Session]) -> None:
    print(f"\n{title}")
    print("| session | image | model | verdict s | P(fake) shown / CLI | explain s (summary s) | saw progress / queue "
          "| errors | P match |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sessions:
        shown = "-" if s.shown_p is None else f"{s.shown_p:.3f}"
        cli = "-" if s.cli_p is None else f"{s.cli_p:.4f}"
        places = [int(m.group(1)) for q in s.saw_queue if (m := re.search(r"for (\d+)", q))]
        queue = (f"queued ({len(places)} places, {max(places)} to {min(places)} others ahead; until "
                 f"{_s(s.queued_until_s)} s)" if places else "no queue message")
        progress = f"{'yes' if s.saw_status else 'no'} ({len(s.saw_status)} texts); {queue}"
        match = {None: "?", True: "yes", False: "NO"}[s.match()]
        print(f"| {s.index} | {s.image} | {s.model} | {_s(s.verdict_s)} | {shown} / {cli} | {_s(s.explain_s)} "
              f"({_s(s.summary_s)}) | {progress} | {'; '.join(s.errors) or 'none'} | {match} |")


def summarize(base: list[Session], load: list[Session], peak_rss: int, loads: dict, n: int) -> dict:
    verdicts = [s.verdict_s for s in load if s.verdict_s is not None]
    explains = [s.explain_s for s in load if s.explain_s is not None]
    errors = [e for s in load for e in s.errors]
    leaks = [s.index for s in load if s.match() is False]
    med = statistics.median(verdicts) if verdicts else None
    base_v = base[0].verdict_s if base and base[0].verdict_s else None
    out = {
        "verdict_s": {"min": min(verdicts, default=None), "median": med, "max": max(verdicts, default=None)},
        "explain_s": {"min": min(explains, default=None), "median": statistics.median(explains) if explains else None,
                      "max": max(explains, default=None)},
        "baseline_verdict_s": base_v, "baseline_explain_s": base[0].explain_s if base else None,
        "ratio_median_verdict": (med / base_v) if med and base_v else None,
        "peak_rss_gib": peak_rss / 1024**3, "errors": errors, "leaks": leaks, "load": loads,
        "targets": {
            f"every verdict <= {TARGET_VERDICT_S:g} s": len(verdicts) == n and max(verdicts) <= TARGET_VERDICT_S,
            f"all {n} explanations within {TARGET_EXPLAIN_S:g} s":
                len(explains) == n and max(explains) <= TARGET_EXPLAIN_S,
            "each showed progress or its place in the queue": all(s.saw_progress for s in load),
            "no errors": not errors,
            "no cross-session leaks": not leaks and all(s.match() is not None for s in load),
            "server RSS <= 4 GB": peak_rss <= TARGET_RSS_BYTES,
        },
    }
    print("\nSummary")
    ratio = out["ratio_median_verdict"]
    print(f"  time to verdict, {n} at once: min {_s(out['verdict_s']['min'])} s, median {_s(med)} s, "
          f"max {_s(out['verdict_s']['max'])} s; alone: {_s(base_v)} s; ratio median/alone "
          + ("-" if ratio is None else f"{ratio:.2f}"))
    print(f"  time to explanation, {n} at once: min {_s(out['explain_s']['min'])} s, median "
          f"{_s(out['explain_s']['median'])} s, max {_s(out['explain_s']['max'])} s; alone: "
          f"{_s(out['baseline_explain_s'])} s")
    print(f"  server peak RSS {out['peak_rss_gib']:.2f} GiB; load {loads}")
    for target, met in out["targets"].items():
        print(f"  {'MET   ' if met else 'MISSED'} {target}")
    return out


def queue_version() -> list[str]:
    """Lines of the app that mention 'Waiting for' (which version of the Explain queue was measured)."""
    found = subprocess.run("grep -n 'Waiting for' pages/*.py explain/*.py", shell=True, cwd=REPO,
                           capture_output=True, text=True).stdout
    return found.strip().splitlines()


# --------------------------------------------------------------------------------------------------- main


async def drive(url: str, images: list[Path], sampler: RssSampler, server_pid: int, args) -> dict:
    from playwright.async_api import async_playwright

    result: dict = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            t = time.perf_counter()
            warm = await run_phase(browser, url, [images[-1]], 0, args)
            result["warmup"], result["warmup_wall_s"] = warm, time.perf_counter() - t
            base = await run_phase(browser, url, [images[0]], 1, args)
            result["baseline"] = base
            await asyncio.sleep(args.pause)
            sampler.reset()
            own = [p for p in tree(os.getpid()) if p not in set(tree(server_pid))]
            cpu0 = (cpu_seconds(tree(server_pid)), cpu_seconds(own))
            load0, t = os.getloadavg(), time.perf_counter()
            load = await run_phase(browser, url, images[:args.sessions], 1, args)
            wall = time.perf_counter() - t
            own = [p for p in tree(os.getpid()) if p not in set(tree(server_pid))]
            cpu1 = (cpu_seconds(tree(server_pid)), cpu_seconds(own))
            result.update(load=load, wall_s=wall, load_before=load0, load_after=os.getloadavg(),
                          peak_rss=sampler.peak, peak_load=sampler.peak_load,
                          cpu_server_s=cpu1[0] - cpu0[0], cpu_browser_s=cpu1[1] - cpu0[1])
        finally:
            await browser.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for a page or a verdict")
    ap.add_argument("--explain-timeout", type=float, default=600.0, help="seconds to wait for 'Explained'")
    ap.add_argument("--pause", type=float, default=5.0, help="seconds between the baseline and the load phase")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    print(f"queue code in the app: {queue_version() or 'none (no Waiting for message in pages/ or explain/)'}")
    print(f"cores {os.cpu_count()}, load average before {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    images = make_images(tmp, args.sessions + 1)  # the last one is the warm-up's
    cli = CliScores(images)
    t = time.perf_counter()
    scores = cli.model()
    gaps = sorted(scores.values())
    min_gap = min(b - a for a, b in zip(gaps, gaps[1:])) if len(gaps) > 1 else 0.0
    print(f"CLI scores ({time.perf_counter() - t:.1f} s): "
          + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()) + f"; smallest gap {min_gap:.4f}")

    proc, url = start_app(tmp / "streamlit.log")
    sampler = RssSampler(proc.pid)
    sampler.start()
    rss_idle = rss_bytes(tree(proc.pid))
    try:
        result = asyncio.run(drive(url, images, sampler, proc.pid, args))
        rss_end = sampler.last
    finally:
        sampler.stop()
        stop_app(proc)
    for s in result["warmup"] + result["baseline"] + result["load"]:
        s.cli_p = cli.of(s.model, s.image)
    print(f"\nserver RSS: started {rss_idle / 2**20:.0f} MiB, end {rss_end / 2**20:.0f} MiB, peak during the "
          f"{args.sessions} sessions {result['peak_rss'] / 2**20:.0f} MiB")
    print(f"{args.sessions} sessions: wall {result['wall_s']:.1f} s; CPU seconds: server {result['cpu_server_s']:.1f}, "
          f"browser + bench {result['cpu_browser_s']:.1f} (of {os.cpu_count()} cores x {result['wall_s']:.0f} s)")
    print_table("Warm-up (cold server, untimed)", result["warmup"])
    print_table("Baseline: 1 session alone", result["baseline"])
    print_table(f"{args.sessions} sessions at once", result["load"])
    loads = {"before": [round(x, 2) for x in result["load_before"]],
             "after": [round(x, 2) for x in result["load_after"]], "peak_1min": round(result["peak_load"], 2),
             "cores": os.cpu_count()}
    out = summarize(result["baseline"], result["load"], result["peak_rss"], loads, args.sessions)
    trouble = log_trouble(tmp / "streamlit.log", r"Traceback|Error|Exception|Warning")
    if args.json:
        out.update(sessions=[asdict(s) for s in result["load"]], baseline=[asdict(s) for s in result["baseline"]],
                   warmup=[asdict(s) for s in result["warmup"]], rss_idle=rss_idle, rss_end=rss_end,
                   wall_s=result["wall_s"], cpu_server_s=result["cpu_server_s"],
                   cpu_browser_s=result["cpu_browser_s"], queue_code=queue_version(), log_trouble=trouble[:100],
                   cli_scores=scores)
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
