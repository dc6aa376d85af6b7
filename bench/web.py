"""Web pages benchmark: what a page costs beside the API calls it makes.

Starts a platform (SQLite) with the web service, loads the demo community, makes a proposal and an
owners' ballot with a result (the test clock passes the notice and voting periods), then, with 20
signed-in users at once (threads, each its own browser session), fetches the community home, a case
page and the result page; and, in the same run with the same users and tokens, makes the API calls
each of those pages makes (one after the other, as the page does). Prints median and p95 of both
and their ratio. The pages report how many API calls they made (Server-Timing); the run stops if
this file's list of a page's calls no longer matches.

    python -m bench.web [--users 20] [--rounds 10]
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
        """Each page's path, and the API calls it makes (mirroring services/web/pages*.py)."""
        c = f"/api/v1/communities/{self.c}"
        return {
            "home": (f"/communities/{self.c}/", [
                "/api/v1/me", c, c + "/board", c + "/proposals?status=collecting", c + "/consultations?status=open",
                c + "/ballots?status=open", c + "/action-plans", c + "/me/inbox?limit=5"]),
            "case": (f"/communities/{self.c}/cases/{ids['proposal']}", [
                c + f"/cases/{ids['proposal']}", c + "/directory"]),
            "result": (f"/communities/{self.c}/ballots/{ids['ballot']}", [
                c + f"/ballots/{ids['ballot']}", c + f"/cases/{ids['ballot_case']}",
                c + f"/ballots/{ids['ballot']}/my-vote", "/api/v1/me"]),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    p = Platform("sqlite").setup()
    try:
        p.start()
        p.start("web")
        p.cli("demo")
        b = Bench(p)
        ids = b.seed()
        residents = [n for n in b.demo["people"] if "minor" not in n]
        tokens = [b.token(residents[i % len(residents)]) for i in range(args.users)]
        sessions = [b.signed_in(t) for t in tokens]
        apis = []
        for t in tokens:
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {t}"
            apis.append(s)
        print(f"\nWeb pages: {args.users} signed-in users at once, {args.rounds} rounds each "
              f"(SQLite, one process per service, this machine)")
        print(f"  {'page':<8} {'api calls':>9} {'page median':>12} {'page p95':>9} {'API median':>11} {'API p95':>8} "
              f"{'ratio':>6}")
        for name, (path, calls) in b.pages(ids).items():
            first = sessions[0].get(b.web + path, timeout=30)
            assert first.status_code == 200, (name, first.status_code)
            reported = int(re.search(r'desc="(\d+) calls"', first.headers["Server-Timing"]).group(1))
            if reported != len(calls):
                print(f"bench.web: the {name} page makes {reported} API calls, this benchmark lists {len(calls)}",
                      file=sys.stderr)
                return 1

            def page(s, path=path):
                r = s.get(b.web + path, timeout=60)
                assert r.status_code == 200, r.status_code

            def api(s, calls=calls):
                for call in calls:
                    r = s.get(p.url + call, timeout=60)
                    assert r.status_code in (200, 404, 409), (call, r.status_code)

            # interleaved, so load on the machine falls on both alike
            page_times, api_times = [], []
            for _ in range(2):
                page_times += concurrently(sessions, max(1, args.rounds // 2), page)
                api_times += concurrently(apis, max(1, args.rounds // 2), api)
            pm, am = statistics.median(page_times), statistics.median(api_times)
            print(f"  {name:<8} {len(calls):>9} {pm * 1000:>10.1f}ms {p95(page_times) * 1000:>7.1f}ms "
                  f"{am * 1000:>9.1f}ms {p95(api_times) * 1000:>6.1f}ms {pm / am:>6.2f}")
        print("  (ratio = page median / median of the same API calls made directly, same users, same run)")
        return 0
    finally:
        p.teardown()


if __name__ == "__main__":
    sys.exit(main())
