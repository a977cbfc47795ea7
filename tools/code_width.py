"""How many characters of code the rendered book shows before a line scrolls sideways.

    python tools/code_width.py _build/html                 # after make book
    python tools/code_width.py _build/html --width 1280    # browser window width in pixels

Serves the built book on 127.0.0.1, opens a chapter in Debian's Chromium (headless, the same
setup as tools/browser_check.py) in a window ``--width`` pixels wide, and measures the first code
cell: the width of its text area (the ``pre`` element's inner width, padding removed) divided by
the width of one character of its monospace font. ``tests/test_notebooks.py`` (``CODE_WIDTH``)
holds the figure this prints, rounded down.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_check import CHROMIUM, CHROMIUM_FLAGS, LocalServer  # noqa: E402

MEASURE = """() => {
  const pre = document.querySelector('div.cell_input div.highlight pre');
  const style = getComputedStyle(pre);
  const probe = document.createElement('span');
  probe.style.font = style.font;
  probe.style.whiteSpace = 'pre';
  probe.textContent = '0'.repeat(200);
  pre.appendChild(probe);
  const char = probe.getBoundingClientRect().width / 200;
  probe.remove();
  const text = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {font: style.font, text_px: text, char_px: char, chars: text / char};
}"""


def measure(site: Path, page: str, width: int) -> dict:
    from playwright.sync_api import sync_playwright

    with LocalServer(site) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        tab = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        tab.goto(server.base + page)
        tab.wait_for_load_state("load")
        result = tab.evaluate(MEASURE)
        browser.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--page", default="chapters/01_neural_networks.html")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in pixels")
    args = parser.parse_args(argv)
    found = measure(args.site, args.page, args.width)
    print(f"{args.page} at {args.width} px: code text area {found['text_px']:.0f} px, one character "
          f"{found['char_px']:.2f} px ({found['font']}): {found['chars']:.1f} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
