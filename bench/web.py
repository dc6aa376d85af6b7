"""Web pages benchmark: what a page costs beside the API calls it makes.

Starts a platform with the web service, loads the demo community, makes a proposal and an
owners' ballot with a result (the test clock passes the notice and voting periods), then, with 20
signed-in users at once (threads, each its own browser session), fetches the community home, a case
page and the result page; and, in the same run with the same users and tokens, makes the API calls
each of those pages makes (one after the other, as the page does), on SQLite and on PostgreSQL.
Prints median and p95 of both and their ratio. Which calls a page makes is read from the page
(the X-Api-Calls header the web service sends in test mode), so the baseline is exactly the page's.

    python -m bench.web [--users 20] [--rounds 10] [--backend sqlite|postgres|both] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests

from services.common import clock
from tests.harness import Platform, frozen_now, wait_for

TARGET = 1.5  # issue 14: a page costs at most 1.5x the API calls it makes
OWNERS = ("王芳 Wang", "李强 Li", "张伟 Zhang", "刘洋 Liu", "周杰 Zhou", "陈静 Chen", "赵磊 Zhao")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, p: Platform):
        self.p = p
        self.demo = json.loads((Path(p.env["CONSULT_DATA_DIR"]) / "demo.json").read_text(encoding="utf-8"))
        self.c = self.demo["community"]
        self.web = f"http://127.0.0.1:{p.port('web')}"
        self.worker = self.demo["tokens"]["community_worker"]

    def token(self, name: str) -> str:
        return self.p.rpc("communities", "issue_token", self.c, self.demo["people"][name], None, "bench", "demo")["token"]

    def api(self, method: str, path: str, token: str, body=None, expect=None):
        return self.p.api(method, f"/api/v1/communities/{self.c}{path}", token, body, expect=expect)

    def seed(self) -> dict:
        """A proposal (the case page) and an adopted owners' ballot (the result page)."""
        now = frozen_now()
        self.p.set_clock(now)
        zhang = self.token("张伟 Zhang")
        proposal = self.api("POST", "/proposals", zhang, {"title": "疏通2栋排水管", "body": "每逢雨季院坝积水",
                                                          "category": "drainage", "scope": "building",
                                                          "scope_id": self.demo["buildings"]["2"]}, 201).json()["id"]
        self.api("POST", f"/proposals/{proposal}/submit", zhang, None, 200)
        ballot = self.api("POST", "/ballots", self.worker, {"title": "更换2栋排水管", "scope": "building",
                                                            "scope_id": self.demo["buildings"]["2"],
                                                            "category": "drainage"}, 201).json()["id"]
        opens = now + timedelta(days=16)
        self.api("PUT", f"/ballots/{ballot}/configuration", self.worker, {
            "preset": "owners_ordinary", "voting_unit": "owner", "opens_at": clock.format(opens),
            "closes_at": clock.format(opens + timedelta(days=7))}, 200)
        self.p.set_clock(opens + timedelta(minutes=1))
        wait_for(lambda: self.api("GET", f"/ballots/{ballot}", self.worker, None, 200).json()["status"] == "open",
                 timeout=60, message="the ballot open")
        for name in OWNERS:
            self.api("POST", f"/ballots/{ballot}/votes", self.token(name),
                     {"choice": "disagree" if name.startswith("陈") else "agree"}, 201)
        self.p.set_clock(opens + timedelta(days=7, minutes=2))
        case = wait_for(lambda: (b := self.api("GET", f"/ballots/{ballot}", self.worker, None, 200).json())[
            "status"] == "adopted" and b["case"], timeout=60, message="the result")
        return {"proposal": proposal, "ballot": ballot, "ballot_case": case}

    def pages(self, ids: dict) -> dict:
        """Each page's path; the API calls it makes are read from the page itself (X-Api-Calls, which
        the web service sends in test mode only), so the comparison cannot drift from the pages."""
        return {
            "home": f"/communities/{self.c}/",
            "case": f"/communities/{self.c}/cases/{ids['proposal']}",
            "result": f"/communities/{self.c}/ballots/{ids['ballot']}",
        }

    def signed_in(self, token: str) -> requests.Session:
        s = requests.Session()
        html = s.get(self.web + "/sign-in", timeout=30).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
        resp = s.post(self.web + "/sign-in", data={"csrf": csrf, "mode": "token", "token": token},
                      allow_redirects=False, timeout=30)
        assert resp.status_code == 303, resp.status_code
        return s


def concurrently(users: list, rounds: int, fn) -> list[float]:
    """Each user runs fn(user) `rounds` times, all users at once; every run's seconds."""
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(users))

    def run(user):
        start.wait()
        for _ in range(rounds):
            t = time.perf_counter()
            fn(user)
            elapsed = time.perf_counter() - t
            with lock:
                times.append(elapsed)

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def run(backend: str, users: int, rounds: int) -> list[dict]:
    """One backend: the platform, the seed, then each page beside its API calls. A row per page."""
    p = Platform(backend).setup()
    rows = []
    try:
        p.start()
        p.start("web")
        p.cli("demo")
        b = Bench(p)
        ids = b.seed()
        residents = [n for n in b.demo["people"] if "minor" not in n]
        tokens = [b.token(residents[i % len(residents)]) for i in range(users)]
        sessions = [b.signed_in(t) for t in tokens]
        apis = []
        for t in tokens:
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {t}"
            apis.append(s)
        for name, path in b.pages(ids).items():
            first = sessions[0].get(b.web + path, timeout=30)
            assert first.status_code == 200, (name, first.status_code)
            calls = [c.split(":", 1) for c in first.headers["X-Api-Calls"].split()]
            assert calls and all(method == "GET" for method, _ in calls), (name, calls)

            inside: list[float] = []  # the page's own API time (Server-Timing), to split the overhead

            def page(s, path=path):
                r = s.get(b.web + path, timeout=60)
                assert r.status_code == 200, r.status_code
                inside.append(float(re.search(r"api;dur=([0-9.]+)", r.headers["Server-Timing"]).group(1)) / 1000)

            def api(s, calls=calls):
                for _, call in calls:  # one after the other, as the page makes them
                    r = s.get(p.url + call, timeout=60)
                    assert r.status_code < 500, (call, r.status_code)

            # interleaved, so load on the machine falls on both alike
            page_times, api_times = [], []
            for _ in range(2):
                page_times += concurrently(sessions, max(1, rounds // 2), page)
                api_times += concurrently(apis, max(1, rounds // 2), api)
            pm, am = statistics.median(page_times), statistics.median(api_times)
            rows.append({"backend": backend, "page": name, "api_calls": len(calls), "users": users,
                         "page_median_ms": round(pm * 1000, 1), "page_p95_ms": round(p95(page_times) * 1000, 1),
                         "api_median_ms": round(am * 1000, 1), "api_p95_ms": round(p95(api_times) * 1000, 1),
                         "page_api_median_ms": round(statistics.median(inside) * 1000, 1),
                         "ratio": round(pm / am, 2)})
        return rows
    finally:
        p.teardown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    rows = [row for backend in backends for row in run(backend, args.users, args.rounds)]
    print(f"\nWeb pages: {args.users} signed-in users at once, {args.rounds} rounds each "
          f"(one process per service, this machine)")
    print(f"  {'backend':<8} {'page':<7} {'api calls':>9} {'page median':>12} {'page p95':>9} {'API median':>11} "
          f"{'API p95':>8} {'ratio':>6} {'of which API':>13}")
    for r in rows:
        print(f"  {r['backend']:<8} {r['page']:<7} {r['api_calls']:>9} {r['page_median_ms']:>10.1f}ms "
              f"{r['page_p95_ms']:>7.1f}ms {r['api_median_ms']:>9.1f}ms {r['api_p95_ms']:>6.1f}ms {r['ratio']:>6.2f} "
              f"{r['page_api_median_ms']:>11.1f}ms")
    print(f"  (ratio = page median / median of the same API calls made directly, same users, same run; "
          f"target <= {TARGET}; 'of which API': the page's own API calls, median, from its Server-Timing)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    worst = max(r["ratio"] for r in rows)
    print(f"  worst ratio {worst:.2f}: {'within' if worst <= TARGET else 'OVER'} the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
