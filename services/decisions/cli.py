"""`consult decisions ...`: operator commands of the decisions stage."""
from __future__ import annotations

import json

from services.cli.rpc import CliError, Rpc
from services.contracts import decisions

# Exit statuses of `consult decisions retally`.
MATCH, MISMATCH, CANNOT_COMPARE = 0, 1, 2


def register(subparsers) -> None:
    p = subparsers.add_parser("decisions", help="ballots and resolutions")
    sub = p.add_subparsers(dest="decisions_cmd", required=True)
    q = sub.add_parser("retally", help="recount a ballot from its events and compare with its recorded result "
                                       "(exit 0 match, 1 mismatch, 2 nothing to compare)")
    q.add_argument("ballot")
    q.add_argument("--json", action="store_true", help="print the full report as JSON")
    q.set_defaults(fn=cmd_retally)


def _numbers(result: dict) -> str:
    def pair(name: str) -> str:
        return f"{result.get(name + '_area')} m² / {result.get(name + '_heads')}"

    text = f"eligible {pair('eligible')}, participating {pair('participating')}"
    if result.get("agreeing_heads") is not None:
        text += f", agreeing {pair('agreeing')}"
    return text


def cmd_retally(args) -> int:
    with Rpc() as rpc:
        try:
            report = rpc.send(decisions.Retally(ballot=args.ballot))
        except CliError as exc:
            raise CliError(str(exc), CANNOT_COMPARE) from None
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif report["match"]:
        result = report["recorded"]
        print(f"MATCH ballot {report['ballot']}: {result['outcome']} — {_numbers(result)} "
              f"({report['votes_counted']} votes recounted from the record)")
    else:
        print(f"MISMATCH ballot {report['ballot']}: the recorded result differs from a recount of its events")
        for d in report["differences"]:
            print(f"  {d['field']}: recorded {d['recorded']}, recount {d['replayed']}")
    return MATCH if report["match"] else MISMATCH
