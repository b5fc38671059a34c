"""Screenshots of the dashboard's pages for the docs (make screenshots): runs the demo into a
temporary store, serves it with `tracker ui`, and has headless Chromium (Debian's package,
driven by Playwright) save each page to docs/images/ui-*.png."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("TRACKER_BROWSER", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOUND_MS = 30_000


def main() -> int:
    from playwright.sync_api import sync_playwright

    tracker = str(Path(sys.executable).parent / "tracker")
    with tempfile.TemporaryDirectory(prefix="tracker-shots-") as folder:
        store = f"sqlite:///{folder}/experiments.db"
        subprocess.run([tracker, "--url", store, "demo", "--trials", "150"], check=True, capture_output=True)
        server = subprocess.Popen(
            [tracker, "--url", store, "ui", "--no-open", "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            address = server.stdout.readline().rsplit(" at ", 1)[1].strip().rstrip("/")
            pages = {
                "ui-experiments.png": "/",
                "ui-experiment.png": "/experiments/2",
                "ui-trial.png": "/trials/{best}",
                "ui-compare.png": "/compare?ids=1,2",
            }
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                best = page.request.get(address + "/api/experiments/2").json()["best_trial_id"]
                for name, path in pages.items():
                    page.goto(address + path.format(best=best))
                    page.wait_for_selector("[data-chart]:not([data-drawn])", state="detached", timeout=BOUND_MS)
                    page.screenshot(path=str(IMAGES / name), full_page=name != "ui-experiment.png")
                    print(f"wrote docs/images/{name}")
                page.set_viewport_size({"width": 1360, "height": 2200})
                page.goto(address + "/experiments/2")
                page.wait_for_selector("[data-chart]:not([data-drawn])", state="detached", timeout=BOUND_MS)
                page.screenshot(path=str(IMAGES / "ui-experiment.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
