"""Screenshots of the main pages for README.md and docs/web.md.

Runs the app on a throwaway SQLite pair with the demo data of tests/e2e/demo.py (made
through the API, then settled by the worker), opens each page in Debian's Chromium through
Playwright and saves what fits in the window: English at 1280x800 and Korean at 390x844,
as ``docs/images/screen-<page>-<width>.png``. With Pillow installed the PNGs are written
with a 256-colour palette (about a third of the size); without it, as Chromium made them.

    .venv/bin/python tools/screenshots.py [--out docs/images] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the demo data lives with the tests that share it

from tests.e2e.demo import Demo, Person, seed  # noqa: E402

from missionlink import bootstrap  # noqa: E402
from missionlink.api.app import create_app  # noqa: E402
from missionlink.config import Settings  # noqa: E402
from missionlink.migrations.runner import upgrade_all  # noqa: E402
from missionlink.workers.runner import Worker  # noqa: E402

#: (language, window) of each set of shots: each language and each size once.
SIZES = [("en", {"width": 1280, "height": 800}), ("ko", {"width": 390, "height": 844})]
LOCALES = {"ko": "ko-KR", "en": "en-US"}
#: What a page has once its script has filled it in.
FILLED = {"wallet": "#journal tbody tr", "me": "#my-pledges tbody tr",
          "studio": "#studio-missions .mission-card"}


def pages(demo: Demo) -> list[tuple[str, str, Person | None]]:
    """(name, path, who looks) of every page shot."""
    m = demo.missions
    return [
        ("home", "/", None),
        ("channel", f"/channels/{demo.streamer.id}", demo.viewer),
        ("mission", f"/missions/{m['live']}", demo.viewer),
        ("post", f"/posts/{demo.post_id}", demo.viewer),
        ("wallet", "/wallet", demo.viewer),
        ("me", "/me", demo.viewer),
        ("studio", "/studio", demo.streamer),
    ]


def shrink(path: Path) -> None:
    """Rewrite a PNG with a 256-colour palette when Pillow is there."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256)
    small.save(path, optimize=True)


async def shoot(base: str, demo: Demo, out: Path, chromium: str) -> list[Path]:
    saved: list[Path] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium,
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            for lang, viewport in SIZES:
                tabs: dict[int | None, Any] = {}
                for name, path, who in pages(demo):
                    key = who.id if who else None
                    if key not in tabs:
                        context = await browser.new_context(
                            viewport=viewport, locale=LOCALES[lang], timezone_id="Asia/Seoul")
                        if who is not None:
                            saved_token = json.dumps(
                                {"token": who.token, "exp": (time.time() + 600) * 1000})
                            await context.add_init_script(
                                "sessionStorage.setItem('missionlink-access', "
                                f"{json.dumps(saved_token)})")
                        tabs[key] = await context.new_page()
                    page = tabs[key]
                    await page.goto(f"{base}{path}?lang={lang}")
                    await page.wait_for_selector("body[data-ready]", state="attached")
                    if name in FILLED:
                        await page.locator(FILLED[name]).first.wait_for()
                    await page.wait_for_timeout(300)
                    file = out / f"screen-{name}-{viewport['width']}.png"
                    await page.screenshot(path=str(file), animations="disabled", caret="hide")
                    shrink(file)
                    saved.append(file)
        finally:
            await browser.close()
    return saved


async def main(out: Path, chromium: str) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url="", identity_database_url="", broker_url="",
            public_url=base, argon2_time_cost=1, argon2_memory_kib=8,
            rate_limit_signups_per_minute=0, rate_limit_pledges_per_minute=0,
            rate_limit_posts_per_minute=0)
        await asyncio.to_thread(upgrade_all, settings)
        container = bootstrap.build(settings)
        try:
            app = create_app(container)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://testserver") as client:
                demo = await seed(client)
            await Worker(container).run_until_idle()
            server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning",
                                                   ws="none", timeout_graceful_shutdown=1))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                if serving.done():
                    serving.result()  # it could not start: say why
                await asyncio.sleep(0.05)
            try:
                saved = await shoot(base, demo, out, chromium)
            finally:
                server.should_exit = True
                await serving
        finally:
            await container.close()
            sock.close()
    for file in saved:
        print(f"{file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}"
              f"  {file.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main(args.out, args.chromium)))
