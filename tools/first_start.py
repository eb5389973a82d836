"""First start of `lstmviz serve` on an empty cache, then every page opened once in headless
Chromium: the time until the dashboard answers and the cache size after each page.

usage: python3 tools/first_start.py CACHE_DIR PORT REPO_DIR   (CACHE_DIR is emptied first)"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lstmviz.bench.browser import chromium

cache = Path(sys.argv[1])
port = int(sys.argv[2])
clone = sys.argv[3]
shutil.rmtree(cache, ignore_errors=True)
env = {**os.environ, "LSTMVIZ_CACHE": str(cache)}
t0 = time.perf_counter()
log = open("/tmp/first-start.log", "w")
server = subprocess.Popen(["lstmviz", "serve", "--port", str(port)], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        break
    except Exception:
        time.sleep(0.25)
print(f"first start: answered after {time.perf_counter() - t0:.1f} s", flush=True)


def du():
    return sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e9


print(f"cache after the first start: {du():.2f} GB", flush=True)
try:
    with chromium(window=(1500, 1000)) as d:
        for page in ["/", "/discover", "/heatmap", "/gates", "/model", "/compare", "/generate", "/text"]:
            t = time.perf_counter()
            d.get(f"http://127.0.0.1:{port}{page}")
            # wait until no progress bar is shown for 5 s in a row (jobs done), at most 15 min
            quiet = 0
            while quiet < 5 and time.perf_counter() - t < 900:
                waiting = "document.body.innerText.includes('Waiting in the queue') ? 1 : 0"
                busy = d.execute_script(f"return document.querySelectorAll('progress').length + ({waiting})")
                quiet = 0 if busy else quiet + 1
                time.sleep(1)
            print(f"{page}: settled after {time.perf_counter() - t:.1f} s; cache {du():.2f} GB", flush=True)
finally:
    server.terminate()
    server.wait()
print(f"cache after every page once: {du():.2f} GB")
