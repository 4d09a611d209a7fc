"""Real-browser smoke test: serve the app, open it in headless Debian chromium, get a verdict."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian's chromium")
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "streamlit.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
           "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
            if proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"streamlit did not start: {log.read_text()[-2000:]}")
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited: {log.read_text()[-2000:]}")
        yield url
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_predict_page_shows_verdict_for_sample(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app_url}/predict", wait_until="domcontentloaded")
    verdict = page.locator("h3", has_text="Verdict:")
    expect(verdict).to_have_count(1, timeout=120_000)
    expect(verdict).to_contain_text(re.compile("FAKE|REAL"))
    metric = page.locator('[data-testid="stMetric"]')
    expect(metric).to_contain_text("P(fake)", timeout=30_000)
    expect(metric).to_contain_text(re.compile(r"\d+\.\d%"))
    assert page.locator('[data-testid="stException"]').count() == 0
    # The st.navigation menu (titles), not Streamlit's legacy file-name list of pages/.
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav).to_contain_text("Predict")
    text = nav.inner_text()
    assert "Home" in text and "_shared" not in text and "streamlit app" not in text
    page.screenshot(path=str(tmp_path / "predict.png"), full_page=True)
    shot = os.environ.get("DEEPFAKE_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)
    page.close()


def test_home_page_renders_model_table(app_url, browser):
    page = browser.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    page.get_by_text("Installed models").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_explain_page_explains_sample(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{app_url}/explain", wait_until="domcontentloaded")
    # The Summary comes first ("Summary ready"); the second st.status turns into "Explained" once LIME and its
    # stability check are in as well.
    expect(page.get_by_text("Explained", exact=True)).to_be_visible(timeout=240_000)
    expect(page.locator("h3", has_text="Verdict:")).to_contain_text(re.compile("FAKE|REAL"))
    # The page opens on the Summary tab: the headline (verdict), the waterfall and the method table.
    expect(page.get_by_role("tab", name="Summary")).to_have_attribute("aria-selected", "true")
    expect(page.locator("h4").filter(has_text=re.compile(r"^(Fake|Real|Unsure).*\(P \d\.\d\d\)"))).to_be_visible()
    expect(page.get_by_text("Download waterfall.png")).to_be_visible()
    expect(page.get_by_role("table").filter(has_text="Region Shapley values")).to_be_visible()
    page.get_by_role("tab", name="LIME").click()
    expect(page.get_by_text("Download lime.png")).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Regions").click()
    expect(page.get_by_text(re.compile("top region")).first).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Faithfulness").click()
    expect(page.get_by_text("Download deletion_lime.png")).to_be_visible(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_role("tab", name="Summary").click()
    shot = os.environ.get("DEEPFAKE_SCREENSHOT_EXPLAIN")
    page.screenshot(path=shot or str(tmp_path / "explain.png"), full_page=True)
    page.close()


def test_group_photo_shows_numbered_faces(app_url, browser, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect
    from skimage import data

    face = data.astronaut()[0:256, 128:384]
    group = tmp_path / "group.png"
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(group)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{app_url}/predict", wait_until="domcontentloaded")
    page.get_by_text("Upload", exact=True).click()
    page.locator('input[type="file"]').set_input_files(str(group))
    expect(page.get_by_text(re.compile(r"2 faces found"))).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Every face")).to_be_visible()
    expect(page.locator("h3", has_text="Verdict:")).to_contain_text(re.compile("FAKE|REAL"))
    expect(page.locator('[data-testid="stMetric"]')).to_contain_text("P(fake)", timeout=60_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stImage"] img').nth(1)).to_be_visible(timeout=60_000)  # boxed photo + crop
    page.wait_for_timeout(1500)
    assert page.locator('[data-testid="stException"]').count() == 0
    _shot(page, "group", tmp_path)
    page.close()


def test_models_page_compares_models(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    page.goto(f"{app_url}/models", wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Summary")).to_be_visible(timeout=180_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="ROC").click()
    expect(page.locator('[data-testid="stImage"] img').first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Threshold & calibration").click()
    expect(page.get_by_text("Suggested operating point")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Save as operating point")).to_be_visible()
    page.get_by_role("tab", name="Cross-source").click()
    expect(page.get_by_text(re.compile("Leave-one-source-out"))).to_be_visible(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_role("tab", name="Per source").click()
    _shot(page, "models", tmp_path)
    page.close()


def test_explain_page_compares_models_side_by_side(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{app_url}/explain", wait_until="domcontentloaded")
    expect(page.get_by_text("Explained", exact=True)).to_be_visible(timeout=240_000)
    page.get_by_text("Compare all models").click()
    page.get_by_role("tab", name="Compare models").click()
    expect(page.get_by_text("Download comparison.png")).to_be_visible(timeout=240_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def _has_data() -> bool:
    """Whether the served app sees a dataset (it inherits this process's DEEPFAKE_DATA; `make test` sets it)."""
    from models.analysis.explore import is_dataset

    return is_dataset(os.environ.get("DEEPFAKE_DATA"))


def _open_data_page(browser, app_url, path: str, title: str):
    """Open a page that needs the dataset. Without it: fail under CI=true; elsewhere check that the page says
    how to set DEEPFAKE_DATA, and return None."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    page.goto(f"{app_url}/{path}", wait_until="domcontentloaded")
    expect(page.locator("h1", has_text=title)).to_be_visible(timeout=120_000)
    if _has_data():
        return page
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("shared dataset not found (set DEEPFAKE_DATA or provide ../shared/data/faces128)")
    expect(page.get_by_text("export DEEPFAKE_DATA")).to_be_visible(timeout=30_000)
    page.close()
    return None


def test_dataset_page_shows_balance_grid_and_mean_face(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    t0 = time.perf_counter()
    page = _open_data_page(browser, app_url, "dataset", "Dataset")
    if page is None:
        return
    expect(page.get_by_text("Per source")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
    print(f"dataset page: balance table after {time.perf_counter() - t0:.1f} s")
    page.get_by_role("tab", name="Images").click()
    expect(page.get_by_text(re.compile(r"images match; showing 24"))).to_be_visible(timeout=60_000)
    grid = page.locator('[data-testid="stImage"] img')
    expect(grid.nth(23)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Explain").first).to_be_visible()
    page.get_by_role("tab", name="Mean face").click()
    expect(page.get_by_text("Mean |fake − real|")).to_be_visible(timeout=120_000)
    print(f"dataset page: mean faces after {time.perf_counter() - t0:.1f} s")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=os.environ.get("DEEPFAKE_SCREENSHOT_DATASET") or str(tmp_path / "dataset.png"), full_page=True)
    page.close()


def test_errors_page_shows_mistakes_and_opens_one_in_explain(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    t0 = time.perf_counter()
    page = _open_data_page(browser, app_url, "errors", "Error analysis")
    if page is None:
        return
    expect(page.get_by_role("heading", name="By source")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stMetric"]', has_text="False positives")).to_be_visible()
    expect(page.get_by_role("tab", name=re.compile(r"False negatives \(\d+\)"))).to_be_visible()
    # the "What drives the mistakes" chart is an image too; the galleries' images carry a "P(fake) · name" caption
    expect(page.get_by_role("heading", name="What drives the mistakes")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"False positives \(n=\d+\) are driven mostly by"))).to_be_visible()
    first = page.locator('[data-testid="stImage"]', has_text=re.compile(r"\d\.\d{3} · ")).first
    expect(first).to_be_visible(timeout=60_000)
    print(f"errors page: first gallery after {time.perf_counter() - t0:.1f} s")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=os.environ.get("DEEPFAKE_SCREENSHOT_ERRORS") or str(tmp_path / "errors.png"), full_page=True)
    # One click: the most confident false positive opens on the Explain page, picked as "From error analysis".
    page.get_by_role("button", name="Explain").first.click()
    page.wait_for_url(re.compile(r"/explain$"), timeout=60_000)
    expect(page.get_by_role("radio", name="From error analysis")).to_be_checked(timeout=60_000)
    expect(page.locator("h3", has_text="Verdict:")).to_contain_text(re.compile("FAKE|REAL"), timeout=120_000)
    expect(page.get_by_text("Ground truth: real").first).to_be_visible(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_batch_page_scores_uploads(app_url, browser, tmp_path):
    """Upload two images and a zip, score them, see the table, the histogram and the CSV download."""
    import zipfile

    from PIL import Image
    from playwright.sync_api import expect
    from skimage import data

    face = data.astronaut()[0:256, 128:384]
    a, b = tmp_path / "astronaut.png", tmp_path / "mirrored.jpg"
    Image.fromarray(face).save(a)
    Image.fromarray(face[:, ::-1]).save(b)
    z = tmp_path / "pack.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(a, "inner/face.png")
        zf.writestr("inner/broken.jpg", b"not an image")
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    page.goto(f"{app_url}/batch", wait_until="domcontentloaded")
    expect(page.get_by_text("Upload face images")).to_be_visible(timeout=120_000)
    page.locator('input[type="file"]').set_input_files([str(a), str(b), str(z)])
    page.get_by_role("button", name=re.compile(r"Score 3 uploads")).click()
    expect(page.get_by_role("button", name="Download CSV").first).to_be_visible(timeout=180_000)
    page.wait_for_timeout(1500)  # let the rerun settle
    metrics = page.locator('[data-testid="stMetric"]')
    expect(metrics.filter(has_text="Faces scored")).to_contain_text("3")
    expect(metrics.filter(has_text="Errors")).to_contain_text("1")
    assert page.locator('[data-testid="stException"]').count() == 0
    shot = os.environ.get("DEEPFAKE_SCREENSHOT_BATCH")
    page.screenshot(path=shot or str(tmp_path / "batch.png"), full_page=True)
    page.close()


def test_batch_page_cancel_keeps_rows_scored_so_far(app_url, browser, tmp_path):
    """40 full photos (face detection, ~0.3 s each): Cancel mid-way keeps the rows already scored."""
    import zipfile

    from PIL import Image
    from playwright.sync_api import expect
    from skimage import data

    photo = data.astronaut()
    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(40):
            buf = io.BytesIO()
            Image.fromarray(np.roll(photo, 3 * i, axis=1)).save(buf, format="JPEG", quality=90)
            zf.writestr(f"photo_{i:02d}.jpg", buf.getvalue())
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    page.goto(f"{app_url}/batch", wait_until="domcontentloaded")
    expect(page.get_by_text("Upload face images")).to_be_visible(timeout=120_000)
    page.locator('input[type="file"]').set_input_files(str(z))
    page.get_by_role("button", name=re.compile(r"Score 1 upload")).click()
    expect(page.get_by_text(re.compile(r"Scored \d+ faces from \d+ files"))).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Cancel").click()
    warning = page.get_by_text(re.compile(r"Cancelled: \d+ files scored"))
    expect(warning).to_be_visible(timeout=60_000)
    done = int(re.search(r"Cancelled: (\d+) files", warning.inner_text()).group(1))
    assert 0 < done < 40
    expect(page.get_by_role("button", name="Download CSV").first).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def _no_exception(page, where: str) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{where}: {boxes.first.inner_text()[:500]}"


def _shot(page, name: str, tmp_path) -> None:
    """A full-page screenshot; also into $DEEPFAKE_SCREENSHOT_DIR (docs/ screenshots: built-in samples only)."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    folder = os.environ.get("DEEPFAKE_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / f"screenshot_{name}.png"), full_page=True)


def test_first_time_path_home_demo_explain_batch_models(app_url, browser, tmp_path):
    """Issue 14: what a new user does first, through the menu, failing on any exception box: Home -> Predict (the
    demo pair; detector_v2 calls the demo fake fake) -> Explain that face -> Batch with two same-named files of
    different content (kept apart) -> Models."""
    from PIL import Image
    from playwright.sync_api import expect
    from skimage import data

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="domcontentloaded")
    expect(page.get_by_text("Installed models")).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile("never saw in training"))).to_be_visible(timeout=60_000)
    _no_exception(page, "Home")
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Predict").click()
    expect(page.get_by_text(re.compile("demonstration, not a test"))).to_be_visible(timeout=120_000)
    expect(page.get_by_role("radio", name="Demo pair")).to_be_checked()
    verdict = page.locator("h3", has_text="Verdict:")
    expect(verdict).to_contain_text("FAKE", timeout=120_000)
    expect(page.get_by_text(re.compile("Edited here: the mouth"))).to_be_visible()
    page.wait_for_timeout(1500)
    _no_exception(page, "Predict")
    _shot(page, "predict", tmp_path)
    page.get_by_role("button", name="Explain this face").click()
    page.wait_for_url(re.compile(r"/explain$"), timeout=60_000)
    expect(page.get_by_role("radio", name="From Predict")).to_be_checked(timeout=60_000)
    expect(page.get_by_text("Explained", exact=True)).to_be_visible(timeout=240_000)
    expect(page.get_by_text(re.compile("Edited here: the mouth")).first).to_be_visible()
    _no_exception(page, "Explain")
    _shot(page, "explain", tmp_path)
    # Batch: the same file name from two folders, different pixels: two rows, the second "photo.jpg (2)"
    face = data.astronaut()[0:256, 128:384]
    for folder, pixels in (("one", face), ("two", face[:, ::-1])):
        (tmp_path / folder).mkdir()
        Image.fromarray(pixels).save(tmp_path / folder / "photo.jpg", quality=92)
    (tmp_path / "two" / "notes.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Batch").click()
    expect(page.get_by_text("Upload face images")).to_be_visible(timeout=120_000)
    page.locator('input[type="file"]').set_input_files(
        [str(tmp_path / "one" / "photo.jpg"), str(tmp_path / "two" / "photo.jpg"), str(tmp_path / "two" / "notes.pdf")])
    page.get_by_role("button", name=re.compile(r"Score 3 uploads")).click()
    expect(page.get_by_role("button", name="Download CSV").first).to_be_visible(timeout=180_000)
    page.wait_for_timeout(1500)
    metrics = page.locator('[data-testid="stMetric"]')
    expect(metrics.filter(has_text="Files")).to_contain_text("3")
    expect(metrics.filter(has_text="Errors")).to_contain_text("1")
    _no_exception(page, "Batch")
    _shot(page, "batch", tmp_path)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Models").click()
    expect(page.get_by_role("heading", name="Summary")).to_be_visible(timeout=180_000)
    page.wait_for_timeout(1500)
    _no_exception(page, "Models")
    page.close()


def test_video_page_scores_a_sample_clip_and_explains_a_frame(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{app_url}/video", wait_until="domcontentloaded")
    page.get_by_text("Sample: fake clip").click()
    expect(page.locator("h3", has_text="Clip:")).to_contain_text("FAKE", timeout=180_000)
    expect(page.get_by_text("P(fake) over time")).to_be_visible()
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
    page.wait_for_timeout(1500)
    _no_exception(page, "Video")
    _shot(page, "video", tmp_path)
    page.get_by_role("button", name="Explain").first.click()
    page.wait_for_url(re.compile(r"/explain$"), timeout=60_000)
    expect(page.get_by_role("radio", name="From Video")).to_be_checked(timeout=60_000)
    expect(page.locator("h3", has_text="Verdict:")).to_contain_text(re.compile("FAKE|REAL"), timeout=120_000)
    _no_exception(page, "Explain from Video")
    page.close()


def test_video_page_cancel_keeps_the_frames_scored_so_far(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    from models.video.synth import make_clip

    clip = make_clip(tmp_path / "long.mp4", seconds=16.0, fps=12.0, size=(320, 320))
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{app_url}/video", wait_until="domcontentloaded")
    page.get_by_text("Upload", exact=True).click()
    page.get_by_text("Frames sampled").wait_for(timeout=60_000)
    page.locator('input[type="file"]').set_input_files(str(clip))
    expect(page.get_by_role("button", name="Cancel")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text(re.compile(r"cancelled after \d+ of 32 frames"))).to_be_visible(timeout=60_000)
    _no_exception(page, "Video cancel")
    page.close()
