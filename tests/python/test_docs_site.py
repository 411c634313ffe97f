"""The generated dbt docs site renders in a real browser: an exposure's page opens and its
lineage graph runs from the Bronze sources to the dashboard.

The site (`dbt docs generate` on the analyst test warehouse) is served from its target folder
on a free loopback port by Python's http.server, and headless Chromium (Debian package
`chromium`) opens the exposure with its lineage graph (`?g_v=1&g_i=+exposure:<name>`). A small
probe script, appended to the served index.html only, reads the nodes and edges that the
site's graph library (cytoscape) rendered and writes them into the page, which
`chromium --dump-dom` returns.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from analyst_build import docs_site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="headless Chromium is not installed (Debian package `chromium`; scripts/setup.sh "
           "installs it): the docs site cannot be opened in a browser",
)

PROBE = """<script>
(function poll(tries) {
  var cy = null;
  document.querySelectorAll('div').forEach(function (el) {
    if (el._cyreg && el._cyreg.cy) { cy = el._cyreg.cy; }
  });
  if (cy && cy.nodes().length > 0) {
    var visible = function (element) { return element.visible(); };
    var probe = document.createElement('pre');
    probe.id = 'setu-lineage-probe';
    probe.textContent = JSON.stringify({
      nodes: cy.nodes().filter(visible).map(function (n) { return n.id(); }),
      edges: cy.edges().filter(visible).map(function (e) {
        return [e.source().id(), e.target().id()];
      })
    });
    document.body.appendChild(probe);
  } else if (tries > 0) {
    setTimeout(function () { poll(tries - 1); }, 250);
  }
})(200);
</script>"""
PROBE_OUTPUT = re.compile(r'<pre id="setu-lineage-probe">(?P<json>[^<]*)</pre>')
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
    # Virtual time runs the page's timers and fetches to completion, then dumps at once.
    "--virtual-time-budget=30000",
]


class DocsHandler(SimpleHTTPRequestHandler):
    """Serves the target folder; index.html gets the lineage probe appended."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0] in ("/", "/index.html"):
            page = (Path(self.directory) / "index.html").read_text()
            at = page.rindex("</body>")
            body = (page[:at] + PROBE + page[at:]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site_url(cluster, dbt_run) -> Iterator[str]:
    target = docs_site(cluster, dbt_run)
    assert (target / "index.html").exists(), "dbt docs generate wrote no index.html"
    handler = functools.partial(DocsHandler, directory=str(target))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def dump_dom(url: str, profile: Path) -> str:
    completed = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, f"chromium failed: {completed.stderr[-2000:]}"
    return completed.stdout


def upstream(edges: list[list[str]], node: str) -> set[str]:
    parents: dict[str, set[str]] = {}
    for source, target in edges:
        parents.setdefault(target, set()).add(source)
    seen, stack = set(), [node]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


@pytest.mark.parametrize(("exposure", "label", "bronze_table"), [
    ("machine_dashboard", "CNC machine dashboard", "machine_state_events"),
    ("webapp_live_status", "Web app live machine status", "machine_telemetry"),
])
def test_exposure_lineage_renders_from_bronze(site_url: str, tmp_path: Path, exposure: str,
                                              label: str, bronze_table: str) -> None:
    node = f"exposure.setu.{exposure}"
    url = f"{site_url}#!/exposure/{node}?g_v=1&g_i=%2Bexposure:{exposure}"
    dom = dump_dom(url, tmp_path / "chromium-profile")

    assert label in dom, "the exposure's page did not render"
    found = PROBE_OUTPUT.search(dom)
    assert found, "the lineage graph did not render (no cytoscape nodes within 50 s)"
    graph = json.loads(found["json"])
    assert node in graph["nodes"]
    lineage = upstream(graph["edges"], node)
    assert f"source.setu.bronze.{bronze_table}" in lineage, sorted(lineage)
    assert any(uid.startswith("model.setu.stg_bronze__") for uid in lineage)
    # The selection is the exposure's lineage only: other dashboards are not drawn.
    assert not [uid for uid in graph["nodes"]
                if uid.startswith("exposure.") and uid != node]
