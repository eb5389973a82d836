"""A bounded load test of a running dashboard: ``clients`` threads each do ``switches``
neuron switches on the Neuron page, as the browser does them (the two callbacks a switch
fires: the painted text window, then the neuron's details), over HTTP on loopback.

    python -m lstmviz.bench.loadtest http://127.0.0.1:8050 --clients 20 --switches 50

Bounded: a fixed number of requests, each with a timeout; the result counts errors (a
non-200 answer, a callback error, a timeout) and gives latency percentiles."""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import threading
import time
from urllib.parse import urlencode, urlsplit

TEXT_OUTPUT = "text-data.data"  # the Neuron page's switch callback
DETAILS_OUTPUT = "details-data.data"  # its details callback (scores, histogram, contexts)


class DashClient:
    """Calls a Dash app's callbacks as its renderer does (POST /_dash-update-component),
    over one keep-alive connection."""

    def __init__(self, base_url: str, dependencies: list[dict], timeout: float = 30.0):
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self.dependencies = dependencies

    @staticmethod
    def fetch_dependencies(base_url: str, timeout: float = 30.0) -> list[dict]:
        parts = urlsplit(base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        try:
            conn.request("GET", "/_dash-dependencies")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def body(self, output_contains: str, inputs: dict[str, object]) -> bytes:
        dep = next(d for d in self.dependencies if output_contains in d["output"])
        outputs = [
            {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]} for part in dep["output"].strip(".").split("...")
        ]
        listed = [{**i, "value": inputs.get(f"{i['id']}.{i['property']}")} for i in dep["inputs"]]
        state = [{**s, "value": inputs.get(f"{s['id']}.{s['property']}")} for s in dep["state"]]
        return json.dumps(
            {
                "output": dep["output"],
                "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": listed,
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]][:1],
                "state": state,
            }
        ).encode()

    def close(self) -> None:
        self.conn.close()

    def call_raw(self, body: bytes) -> bytes:
        """The callback's answer, unparsed; anything but HTTP 200 is an error."""
        self.conn.request("POST", "/_dash-update-component", body=body, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return data

    def call(self, body: bytes) -> dict:
        return json.loads(self.call_raw(body))

    def switch_bodies(self, neuron: str, pos: int = 0, store: str | None = None) -> tuple[bytes, bytes]:
        """A switch in a page that already shows ``store`` (its pickers are filled)."""
        query = {"neuron": neuron, "pos": pos, **({"store": store} if store else {})}
        inputs = {"url.search": "?" + urlencode(query), "url.pathname": "/", "options-of.data": store}
        return self.body(TEXT_OUTPUT, inputs), self.body(DETAILS_OUTPUT, inputs)


def default_view(base_url: str) -> tuple[str, list[str]]:
    """The store a running dashboard opens first, and its recorded neurons' ids."""
    client = DashClient(base_url, DashClient.fetch_dependencies(base_url))
    dep = next(d for d in client.dependencies if TEXT_OUTPUT in d["output"])
    body = client.body(TEXT_OUTPUT, {"url.search": "", "url.pathname": "/"})
    try:
        answer = client.call(body)["response"]
    finally:
        client.close()
    options = answer.get("neuron-pick", {}).get("options")
    if not options:
        raise RuntimeError(f"The dashboard's switch callback ({dep['output'][:60]}...) gave no neuron list.")
    recorded = [o["value"] for o in options if "when chosen" not in o["label"]]
    return answer["store-pick"]["value"], recorded


CATASTROPHIC_REGEX = r"(\w|\w)+!"  # on code text: backtracking exponential in the length of each word


def stress(base_url: str, stop: threading.Event) -> dict:
    """Heavy work beside the load, as a careless or hostile user would start it: the Compare
    page's default comparison (a recording in the server's job queue) once, and Discover with
    a catastrophically backtracking regex over and over until ``stop``. Returns what the
    server answered to them."""
    client = DashClient(base_url, DashClient.fetch_dependencies(base_url), timeout=120)
    answers = {"compare_started": False, "regex_requests": 0, "regex_refused": 0}
    try:
        client.call_raw(client.body("cmp-progress", {"url.search": "", "url.pathname": "/compare"}))
        answers["compare_started"] = True
        query = "?" + urlencode({"regex": CATASTROPHIC_REGEX})
        while not stop.is_set():
            data = client.call_raw(client.body("discover-hypotheses", {"url.search": query, "url.pathname": "/discover"}))
            answers["regex_requests"] += 1
            answers["regex_refused"] += b"backtracks too much" in data
    finally:
        client.close()
    return answers


class _Tally:
    """The latencies (ms) and errors of concurrent clients."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def add(self, latency: float | None = None, error: str | None = None) -> None:
        with self._lock:
            self.latencies += [latency] if latency is not None else []
            self.errors += [error] if error is not None else []


def _switching_client(
    base_url: str, dependencies: list[dict], store: str, neurons: list[str], switches: int, rng, start, tally: _Tally
) -> None:
    """One client: waits at ``start``, then ``switches`` neuron switches on ``store``, no think
    time, each one's latency or error tallied."""
    dash_client = DashClient(base_url, dependencies)
    start.wait()
    for _ in range(switches):
        text_body, details_body = dash_client.switch_bodies(rng.choice(neurons), rng.randrange(0, 100_000), store)
        t0 = time.perf_counter()
        try:
            for body in (text_body, details_body):
                dash_client.call_raw(body)
            tally.add(latency=1000 * (time.perf_counter() - t0))
        except Exception as exc:  # counted, never raised: the test is of the server
            tally.add(error=f"{type(exc).__name__}: {exc}")
            dash_client.close()
            dash_client = DashClient(base_url, dependencies)
    dash_client.close()


def _summary(latencies: list[float], errors: list[str], wall: float) -> dict:
    """Switches, errors and latency percentiles (ms) of a load test."""
    ordered = sorted(latencies)
    pct = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else float("nan")  # noqa: E731
    return {
        "load_switches": len(latencies),
        "load_errors": len(errors),
        "load_first_error": errors[0] if errors else None,
        "load_median_ms": round(statistics.median(ordered), 1) if ordered else float("nan"),
        "load_p95_ms": pct(0.95),
        "load_max_ms": round(ordered[-1], 1) if ordered else float("nan"),
        "load_switches_per_s": round(len(latencies) / wall, 1),
    }


def run_load(
    base_url: str, store: str, neurons: list[str], clients: int = 20, switches: int = 50, seed: int = 0, stressed: bool = False
) -> dict:
    """``clients`` concurrent clients, ``switches`` neuron switches each on ``store``, no
    think time; with ``stressed``, while :func:`stress` runs."""
    dependencies = DashClient.fetch_dependencies(base_url)
    tally = _Tally()
    start = threading.Barrier(clients)
    threads = [
        threading.Thread(
            target=_switching_client,
            args=(base_url, dependencies, store, neurons, switches, random.Random(seed * 1000 + k), start, tally),
            daemon=True,
        )
        for k in range(clients)
    ]
    stop, stressing = threading.Event(), {}
    if stressed:
        heavy = threading.Thread(target=lambda: stressing.update(stress(base_url, stop)), daemon=True)
        heavy.start()
        time.sleep(1.0)  # the recording and the first regex are under way
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if stressed:
        stop.set()
        heavy.join()
    return {"clients": clients, "switches_per_client": switches, **_summary(tally.latencies, tally.errors, wall), **stressing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="The dashboard, e.g. http://127.0.0.1:8050")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--switches", type=int, default=50)
    args = parser.parse_args()
    base = args.url.rstrip("/")
    store, neurons = default_view(base)
    print(json.dumps(run_load(base, store, neurons, args.clients, args.switches), indent=1))


if __name__ == "__main__":
    main()
