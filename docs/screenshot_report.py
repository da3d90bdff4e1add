"""Take ``docs/img/report.png``, the screenshot of a report the docs show.

Records a small sweep (a grid of two parameters, a few failed runs) in a
temporary store, writes its report, opens it in headless Chromium through
Selenium and saves the top of the page, reduced to a palette PNG so that
it stays small (under 300 KB). Needs the report extra, selenium, and
Chromium with chromedriver (Debian: ``apt-get install chromium chromium-driver``)::

    python docs/screenshot_report.py
"""

from __future__ import annotations

import io
import math
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

IMAGE = Path(__file__).resolve().parent / "img" / "report.png"
WIDTH, HEIGHT = 1280, 1500
LIMIT_BYTES = 300_000


def damped(omega: float, damping: float) -> dict[str, object]:
    """A damped oscillator: its energy after 10 s, its peak amplitude, and the trajectory."""
    import numpy as np

    if damping == 0.0 and omega > 2.5:
        raise FloatingPointError(f"no damping at omega={omega}: the amplitude diverged")
    t = np.linspace(0, 10, 400)
    x = np.exp(-damping * t) * np.cos(omega * t)
    return {"energy": float(0.5 * omega**2 * x[-1] ** 2 + 1e-3 * omega), "peak": float(abs(x[200:]).max()), "x": x}


def main() -> None:
    import recorder as rec

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    binary = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise SystemExit("needs Chromium and chromedriver: apt-get install chromium chromium-driver")
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "store"
        with rec.Recorder("oscillator", store=store, git=False, message="damping study") as r:
            grid = rec.grid(omega=[round(0.5 + 0.25 * i, 2) for i in range(12)], damping=[0.0, 0.05, 0.1, 0.2, 0.4])
            with warnings.catch_warnings():  # the failed runs are part of the picture
                warnings.simplefilter("ignore", rec.RecorderWarning)
                r.sweep(damped, grid, progress=False)
        with rec.open(store) as db:
            db.report("oscillator", Path(scratch) / "report.html", color="peak", array="x", array_runs=3)
        options = Options()
        options.binary_location = binary
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            f"--window-size={WIDTH},{HEIGHT}",
            "--enable-unsafe-swiftshader",
            "--hide-scrollbars",
        ):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.get((Path(scratch) / "report.html").as_uri())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if driver.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length > 4"):
                    break
                time.sleep(0.2)
            time.sleep(1)  # let the last transitions end
            png = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    IMAGE.parent.mkdir(parents=True, exist_ok=True)
    for scale in (1.0, 0.85, 0.7, 0.6, 0.5):
        size = (math.floor(image.width * scale), math.floor(image.height * scale))
        small = image.resize(size, Image.Resampling.LANCZOS) if scale < 1 else image
        out = io.BytesIO()
        small.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
        if out.tell() <= LIMIT_BYTES:
            break
    IMAGE.write_bytes(out.getvalue())
    print(f"wrote {IMAGE} ({out.tell() / 1000:.0f} KB, {small.width}x{small.height})")


if __name__ == "__main__":
    main()
