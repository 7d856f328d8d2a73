"""Package boundaries (DESIGN.md): the product package `engine` imports neither
`settlement` nor `feeds`, and nothing in the product imports the demo
or the web view."""

import json
import subprocess
import sys

# Runs in a fresh interpreter so that modules the test session already imported
# cannot hide an import. Every module under engine is imported, none skipped:
# an import error fails the test rather than leaving a module unchecked.
_IMPORT_ALL = """
import json, pkgutil, sys
import engine
names = ["engine"] + [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
for name in names:
    __import__(name)
print(json.dumps({"checked": names, "loaded": sorted(sys.modules)}))
"""

FORBIDDEN = ("settlement", "feeds", "demo", "bench", "web")


def test_engine_imports_neither_settlement_nor_feeds():
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, timeout=300,
                         check=True).stdout
    report = json.loads(out)
    assert {"engine.core.matcher", "engine.gateway", "engine.replay", "engine.__main__"} <= set(report["checked"])
    leaked = [name for name in report["loaded"] if name.split(".")[0] in FORBIDDEN]
    assert leaked == []
