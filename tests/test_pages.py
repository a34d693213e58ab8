"""The page files (charrnn/pages): an install ships every one of them, both pages start
with the shared head, and a page's data cannot be taken for a placeholder."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path
from types import SimpleNamespace

from helpers_vis import constructed_checkpoint, embedded, marked_text

from charrnn import pages
from charrnn.serve import page as serve_page
from charrnn.vis import build
from charrnn.vis import page as vis_page

ROOT = Path(__file__).resolve().parents[1]


def test_every_page_file_is_package_data():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in setup["options.package_data"]["charrnn.pages"].split(",")]
    files = [f.name for f in (ROOT / "charrnn" / "pages").iterdir() if f.is_file() and f.suffix != ".py"]
    assert {"head.html", "vis.html", "vis.css", "vis.js", "serve.html", "serve.css", "serve.js"} <= set(files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not missing, f"setup.cfg's package_data leaves out {missing}"


def test_both_pages_start_with_the_shared_head():
    text = marked_text(300) + " $title ${data} ${script} <&> "
    ckpt = constructed_checkpoint(text)
    data = build(ckpt, "ck/$x.npz", text)
    vis = vis_page.render(data)
    serve = serve_page.render(ckpt, "ck/$x.npz", SimpleNamespace(max_chars=300, max_samples=4)).decode("utf-8")
    shared = pages.read("head.html").split("${title}")[0]
    assert vis.startswith(shared) and serve.startswith(shared)
    assert "<title>charrnn vis: constructed</title>" in vis and "<title>charrnn: constructed</title>" in serve
    assert embedded(vis)["text"] == text  # "$" in the text is text, not a placeholder
    assert pages.read("vis.js") in vis and pages.read("serve.js") in serve
    for document, element in ((vis, "charrnn-data"), (serve, "charrnn-config")):
        before, after = document.split(f'id="{element}">')
        assert "${" not in before + after.split("</script>", 1)[1]  # every placeholder filled
