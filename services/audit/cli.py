"""`consult audit ...`: the auditor's and the operator's commands.

Offline (trust only their inputs, need no running service): `verify`, `verify-proof`, and
`replay --export`. Online (RPC to the platform): `export`, `bundle`, `replay --community`,
`reconcile`, `checkpoint`, `notice`, `public-key`, `cut`, `rotate-key`.

Exit statuses: 0 fine, 1 a verification failed or reconcile found differences, 2 an input could
not be read.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from services.cli.rpc import CliError, Rpc
from services.contracts import audit

OK, FAILED, UNREADABLE = 0, 1, 2


def register(subparsers) -> None:
    p = subparsers.add_parser("audit", help="the verifiable record: export, verify, proofs, replay, reconcile")
    sub = p.add_subparsers(dest="audit_cmd", required=True)

    q = sub.add_parser("export", help="write a community's log, texts with salts, and checkpoints as JSON Lines")
    q.add_argument("--community", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--cut", action="store_true", help="cut a checkpoint first, so the export covers everything")
    q.add_argument("--unsigned", action="store_true",
                   help="also export the entries after the latest checkpoint (the signed header says so)")
    q.set_defaults(fn=cmd_export)

    q = sub.add_parser("verify", help="verify an export offline (exit 0 verified, 1 failed, 2 unreadable)")
    q.add_argument("file")
    _trust_arguments(q)
    _unsigned_tail_argument(q, "accept them and count them as unvouched")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(fn=cmd_verify)

    q = sub.add_parser("bundle", help="one case's entries with inclusion proofs, the checkpoint and the texts")
    q.add_argument("--case", required=True)
    q.add_argument("--community", help="the case's community (found from the case if omitted)")
    q.add_argument("--since", type=int, help="add a consistency proof from this size (your trusted checkpoint's)")
    q.add_argument("--cut", action="store_true", help="cut a checkpoint first, so it covers every entry of the case")
    q.add_argument("--unsigned", action="store_true",
                   help="carry the case's entries after the latest checkpoint without a proof (the signed extent "
                        "says so)")
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_bundle)

    q = sub.add_parser("verify-proof", help="verify a bundle, an inclusion, consistency or platform proof offline")
    q.add_argument("file")
    _trust_arguments(q)
    _unsigned_tail_argument(q, "accept a bundle's entries beyond its checkpoint and count them as unvouched")
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=cmd_verify_proof)

    q = sub.add_parser("replay", help="rebuild proposals, consultations, ballots and plans as they stood at a time")
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument("--community", help="read the log from the audit service")
    source.add_argument("--export", help="read the log from an export file (verified first: needs --public-key)")
    q.add_argument("--public-key", action="append", dest="public_keys",
                   help="with --export: a public key you trust (as for verify); repeatable")
    q.add_argument("--trusted-checkpoint", help="with --export: a checkpoint you trust (as for verify)")
    _training_argument(q)
    _unsigned_tail_argument(q, "replay them too, unvouched (by default replay stops before them)")
    q.add_argument("--at", help="ISO-8601 time with zone (default: now)")
    q.add_argument("--case")
    q.set_defaults(fn=cmd_replay)

    q = sub.add_parser("reconcile", help="compare the log-derived state with each stage service (exit 1 if they differ)")
    q.add_argument("--community", required=True)
    q.add_argument("--cut", action="store_true", help="cut a checkpoint first, so that it covers every entry")
    _unsigned_tail_argument(q, "use them too, unvouched (by default reconcile stops before them)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=cmd_reconcile)

    q = sub.add_parser("checkpoint", help="print the latest signed checkpoint (keep it to verify against later)")
    q.add_argument("--community", help="omit for the platform checkpoint (the log of logs)")
    q.set_defaults(fn=cmd_checkpoint)

    q = sub.add_parser("notice", help="print the checkpoint notice for the community notice board")
    q.add_argument("--community", required=True)
    q.add_argument("--lang", default="zh-CN", help="zh-CN (default) or en")
    q.set_defaults(fn=cmd_notice)

    q = sub.add_parser("public-key", help="print the signing keys (current and retired) and their rotations")
    q.add_argument("--pem", action="store_true", help="print only the current key, as PEM")
    q.set_defaults(fn=cmd_public_key)

    q = sub.add_parser("cut", help="cut checkpoints now for every community with new entries")
    q.add_argument("--community")
    q.set_defaults(fn=cmd_cut)

    q = sub.add_parser("rotate-key", help="rotate the signing key (the old key signs the announcement)")
    q.add_argument("--new-key-file", required=True,
                   help="the new private key (PEM); made, mode 0600, if it does not exist yet")
    q.set_defaults(fn=cmd_rotate_key)


def _trust_arguments(q) -> None:
    q.add_argument("--public-key", action="append", required=True, dest="public_keys",
                   help="a public key you trust: a file (PEM or base64) or base64 of the raw key; repeatable")
    q.add_argument("--trusted-checkpoint",
                   help="a checkpoint you trust: a JSON file, inline JSON, or SIZE:ROOT as printed on a notice")
    _training_argument(q)


def _training_argument(q) -> None:
    q.add_argument("--training", action="store_true",
                   help="the record comes from a training deployment: verify it as one (a training record never "
                        "verifies without this flag, and a production record never with it)")


def _mode(args) -> str:
    from .checkpoints import PRODUCTION, TRAINING

    return TRAINING if getattr(args, "training", False) else PRODUCTION


def _unsigned_tail_argument(q, what: str) -> None:
    q.add_argument("--allow-unsigned-tail", action="store_true",
                   help=f"entries no signed checkpoint covers fail by default; with this flag, {what}")


def _print(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


# --- inputs --------------------------------------------------------------------------------------

def _keys(values: list[str]) -> list:
    from .checkpoints import load_public_key

    keys = []
    for value in values:
        try:
            keys.append(load_public_key(Path(value) if os.path.exists(value) else value))
        except (ValueError, TypeError) as exc:
            raise CliError(f"cannot read the public key {value!r}: {exc}", UNREADABLE) from None
    return keys


def _trusted(value: str | None) -> dict | None:
    """A trusted checkpoint from a file, inline JSON, or SIZE:ROOT (hex, spaces allowed)."""
    if value is None:
        return None
    text = Path(value).read_text(encoding="utf-8") if os.path.exists(value) else value
    if ":" in text and not text.lstrip().startswith("{"):
        size, _, root = text.partition(":")
        try:
            return {"size": int(size.strip()), "root": "".join(root.split()).lower()}
        except ValueError:
            raise CliError(f"a trusted checkpoint SIZE:ROOT needs a whole size, not {size!r}", UNREADABLE) from None
    try:
        trusted = json.loads(text)
    except ValueError:
        raise CliError("the trusted checkpoint is neither JSON nor SIZE:ROOT", UNREADABLE) from None
    if not isinstance(trusted, dict):
        raise CliError("the trusted checkpoint must be a JSON object", UNREADABLE)
    return trusted


def _report_dict(report) -> dict:
    def problem(p):
        return None if p is None else {"kind": p.kind, "message": p.message, "line": p.line, "index": p.index,
                                       "range": list(p.range) if p.range else None}

    return {"ok": report.ok, "first_error": problem(report.first_error),
            "problems": [problem(p) for p in report.problems[:1000]], "warnings": report.warnings,
            "counts": report.counts, "erased": len(report.erased), "community": report.community,
            "size": report.size, "root": report.root, "checkpoint": report.checkpoint, "key_ids": report.key_ids,
            "covered": report.covered, "unvouched": report.unvouched, "extent": report.extent, "mode": report.mode,
            "spanned": report.spanned}


def _show(report, as_json: bool) -> int:
    if as_json:
        _print(_report_dict(report))
    else:
        print(report.summary())
        for p in report.problems[:20]:
            where = "".join([f" line {p.line}" if p.line is not None else "",
                             f" entry {p.index}" if p.index is not None else ""])
            print(f"- {p.kind}{where}: {p.message}")
        if report.erased:
            print(f"{len(report.erased)} texts were erased (their commitments stay in the record)")
    return OK if report.ok else FAILED


# --- offline ---------------------------------------------------------------------------------------

def _green() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    return patcher is not None and patcher.is_monkey_patched("thread")


def cmd_verify(args) -> int:
    from .verify import verify_export

    if not os.path.isfile(args.file):
        raise CliError(f"no such file: {args.file}", UNREADABLE)
    keys, trusted = _keys(args.public_keys), _trusted(args.trusted_checkpoint)
    if _green() and os.path.getsize(args.file) > 48 << 20:
        # `consult` runs green (eventlet, for RPC), and a green process must not fork the
        # verifier's worker processes: a large export is verified in a plain process instead.
        argv = [sys.executable, "-m", "services.audit.cli", "audit", "verify", args.file]
        argv += [a for k in args.public_keys for a in ("--public-key", k)]
        argv += ["--trusted-checkpoint", args.trusted_checkpoint] if args.trusted_checkpoint else []
        argv += ["--allow-unsigned-tail"] if args.allow_unsigned_tail else []
        argv += ["--training"] if args.training else []
        argv += ["--json"] if args.json else []
        sys.stdout.flush()
        os.execv(sys.executable, argv)
    return _show(verify_export(args.file, keys, trusted, allow_unsigned_tail=args.allow_unsigned_tail,
                               mode=_mode(args)), args.json)


def cmd_verify_proof(args) -> int:
    from .verify import verify_proof

    try:
        proof = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the proof {args.file}: {exc}", UNREADABLE) from None
    return _show(verify_proof(proof, _keys(args.public_keys), _trusted(args.trusted_checkpoint),
                              allow_unsigned_tail=args.allow_unsigned_tail, mode=_mode(args)), args.json)


def stopped(size: int, covered: int, used: int) -> dict:
    """Which entries of a log (or an export) of `size` entries, `covered` of them under a signed
    checkpoint, were used, and where and why the use stopped: what replay and reconcile report."""
    if used < size:
        note = (f"used entries [0, {used}) of {size}: entries [{used}, {size}) are not covered by a signed "
                "checkpoint and were left out (--allow-unsigned-tail uses them, unvouched)")
    elif covered < size:
        note = (f"used all {size} entries; the last {size - covered} are not covered by a signed checkpoint: "
                "nothing vouches for them")
    else:
        note = None
    return {"entries": size, "covered": covered, "used": used, "stopped_at": used if used < size else None,
            "unvouched": max(used - covered, 0), "note": note}


def _vouched_export(args) -> tuple[list[dict], dict]:
    """The export's entries a replay may use, once the export verified."""
    from .export import read_export
    from .verify import verify_export

    if not args.public_keys:
        raise CliError("replay --export verifies the export first: give --public-key (as for verify)", UNREADABLE)
    if not os.path.isfile(args.export):
        raise CliError(f"no such file: {args.export}", UNREADABLE)
    report = verify_export(args.export, _keys(args.public_keys), _trusted(args.trusted_checkpoint),
                           allow_unsigned_tail=True, mode=_mode(args))
    if not report.ok:
        raise CliError(f"the export does not verify, so nothing in it is replayed: {report.summary().splitlines()[0]} "
                       "(consult audit verify shows every problem)", FAILED)
    try:
        entries, _texts, _checkpoints = read_export(args.export)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the export {args.export}: {exc}", UNREADABLE) from None
    end = report.covered + report.unvouched  # what the signed header vouches the export holds
    used = end if args.allow_unsigned_tail else report.covered
    return entries[:used], stopped(end, report.covered, used)


def cmd_replay(args) -> int:
    from .replay import replay

    if args.export:
        entries, stop = _vouched_export(args)
    else:
        if args.public_keys or args.trusted_checkpoint or args.training:
            raise CliError("--public-key, --trusted-checkpoint and --training go with --export", UNREADABLE)
        with Rpc() as rpc:
            entries, stop = log_envelopes(rpc.send, args.community, args.allow_unsigned_tail)
    try:
        result = replay(entries, args.at, args.case)
    except ValueError as exc:
        raise CliError(f"--at: {exc}", UNREADABLE) from None
    result["log"] = stop
    _print(result)
    if stop["note"]:
        print(f"consult: {stop['note']}", file=sys.stderr)
    return OK


# --- online ----------------------------------------------------------------------------------------

def log_envelopes(send, community: str, allow_unsigned_tail: bool = False) -> tuple[list[dict], dict]:
    """The entries of the community's log that its latest checkpoint covers (or, with
    `allow_unsigned_tail`, every entry), as the audit service holds them, parsed; and where they stop.
    `send` sends a declared call (the CLI's `Rpc.send`)."""
    from .export import PAGE

    span = send(audit.Extent(community=community))
    end = span["size"] if allow_unsigned_tail else span["covered"]
    out: list[dict] = []
    for start in range(0, end, PAGE):
        lines = send(audit.ExportLines(community=community, start=start, limit=min(PAGE, end - start)))
        out += [json.loads(line) for line in lines]
    return out, stopped(span["size"], span["covered"], end)


def cmd_export(args) -> int:
    from services.common import registry

    from .checkpoints import TRAINING, statement_mode
    from .export import write_export

    with Rpc() as rpc:
        summary = write_export(rpc.send, args.community, args.out, registry.SOURCES, cut=args.cut,
                               unsigned=args.unsigned)
    print(f"exported {summary['entries']} entries, {summary['texts']} texts ({summary['erased']} erased), "
          f"{summary['key_rotations']} key rotations and {summary['checkpoints']} checkpoints to {args.out}")
    if summary["latest"]:
        print(f"latest checkpoint: size {summary['latest']['size']} root {summary['latest']['root']}")
    if statement_mode(summary["header"]) == TRAINING:
        print("TRAINING: this export comes from a training deployment, and its signed header and checkpoints say "
              "so; it verifies only as a training record (consult audit verify --training), never as a production "
              "one")
    if summary["header"]["unsigned"]:
        print(f"unsigned: entries [{summary['covered']}, {summary['entries']}) are not covered by a signed "
              "checkpoint (the signed header says so; verify them with --allow-unsigned-tail)", file=sys.stderr)
    if summary["unreachable"]:
        print(f"warning: no answer from {', '.join(summary['unreachable'])}: their texts are missing", file=sys.stderr)
    if summary["missing_texts"]:
        print(f"warning: {len(summary['missing_texts'])} commitments have no text in any service", file=sys.stderr)
    return OK


def cmd_bundle(args) -> int:
    from .verify import entries_text

    with Rpc() as rpc:
        bundle = rpc.send(audit.CaseBundle(case=args.case, community=args.community, since=args.since,
                                           unsigned=args.unsigned, cut=args.cut))
    Path(args.out).write_text(json.dumps(bundle, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"bundle of case {args.case}: {len(bundle['entries'])} entries, {len(bundle['texts'])} texts, against "
          f"checkpoint size {bundle['checkpoint']['size']} root {bundle['checkpoint']['root']} -> {args.out}")
    unproven = [e["index"] for e in bundle["entries"] if e["proof"] is None]
    if unproven:
        print(f"unsigned: {entries_text(len(unproven))} from entry {unproven[0]} beyond the checkpoint carry no proof "
              "(the signed extent says so; verify them with --allow-unsigned-tail)", file=sys.stderr)
    return OK


def cmd_reconcile(args) -> int:
    from services.common import registry

    from .reconcile import reconcile

    with Rpc() as rpc:
        if args.cut:
            rpc.send(audit.CutCheckpoints(community=args.community))
        entries, stop = log_envelopes(rpc.send, args.community, args.allow_unsigned_tail)
        report = reconcile(rpc.send, args.community, entries, registry.SOURCES)
    report["log"] = stop
    if args.json:
        _print(report)
    else:
        objects = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report["objects"].items())
        print(f"community {report['community']}: {report['entries']} entries; {objects}; "
              f"checked {', '.join(report['checked'])}")
        if stop["note"]:
            print(f"{stop['note']}; a difference in what those entries touch may be only that "
                  "(cut a checkpoint first: --cut)" if stop["stopped_at"] is not None else stop["note"])
        for d in report["differences"]:
            print(f"DIFFERENT {d['stage']} {d['kind']} {d['id']} {d['field']}: log says {d['log']!r}, "
                  f"service says {d['service']!r}")
        if not report["differences"]:
            print("no differences")
    return FAILED if report["differences"] else OK


def cmd_checkpoint(args) -> int:
    with Rpc() as rpc:
        _print(rpc.send(audit.Checkpoint(community=args.community) if args.community
                        else audit.PlatformCheckpoint()))
    return OK


def cmd_notice(args) -> int:
    with Rpc() as rpc:
        print(rpc.send(audit.Notice(community=args.community, lang=args.lang))["text"], end="")
    return OK


def cmd_public_key(args) -> int:
    with Rpc() as rpc:
        keys = rpc.send(audit.PublicKeys())
    if args.pem:
        print(next(k["pem"] for k in keys["keys"] if k["key_id"] == keys["current"]), end="")
    else:
        _print(keys)
    return OK


def cmd_cut(args) -> int:
    with Rpc() as rpc:
        made = rpc.send(audit.CutCheckpoints(community=args.community))
    for c in made:
        print(f"{c['community']}: size {c['size']} root {c['root']}")
    if not made:
        print("nothing new to cover")
    return OK


def cmd_rotate_key(args) -> int:
    from .checkpoints import generate_key_file, key_id, load_private_key

    path = Path(args.new_key_file).resolve()
    if not path.exists():
        generate_key_file(path)
        print(f"made a new key in {path} (mode 0600)")
    try:
        new_id = key_id(load_private_key(path))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the new key {path}: {exc}", UNREADABLE) from None
    with Rpc() as rpc:
        statement = rpc.send(audit.RotateKey(new_key_file=str(path)))
    print(f"rotated the signing key from {statement['old_key_id']} to {new_id}; announcement signed by the old key:")
    _print(statement)
    return OK


def main(argv: list[str] | None = None) -> int:
    """`python -m services.audit.cli audit ...`: the same commands without the `consult` wrapper
    (and without eventlet), e.g. on an auditor's machine."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m services.audit.cli")
    register(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    try:
        return args.fn(args) or OK
    except CliError as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
