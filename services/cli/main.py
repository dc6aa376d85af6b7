"""The `consult` command."""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # noqa: E402 - nameko's standalone RPC needs green sockets

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from services.common import config, registry  # noqa: E402
from services.contracts import communities  # noqa: E402

from . import dlq, up  # noqa: E402
from .rpc import CliError, Rpc, operator, refused  # noqa: E402

IMPORT_WAIT_S = 15.0  # an import is waited for this long in one call, then its job is read
IMPORT_POLL_S = 2.0

# Stage services add their own commands: a module with register(subparsers), declared in the registry.
EXTENSIONS = registry.CLI_PLUGINS


def _print(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_up(args) -> int:
    if args.db:
        os.environ["CONSULT_DB"] = args.db
    if args.data_dir:
        os.environ["CONSULT_DATA_DIR"] = args.data_dir
    changed = up.deployment(args.training, args.clock_speed)
    settings = config.load()
    gateway = f"http://127.0.0.1:{settings.http_port('gateway')}"
    web = f"http://127.0.0.1:{settings.http_port('web')}" if "web" in up.discover() else None
    if web:
        os.environ.setdefault("CONSULT_PUBLIC_URL", web)  # links in notifications open the web pages
    print(f"consult: starting {', '.join(up.discover())} on {settings.backend} "
          f"({settings.data_dir if not settings.is_postgres else 'PostgreSQL'}) …", flush=True)
    procs = up.start(log_dir=None if args.verbose else _log_dir(settings))
    try:
        if settings.training:
            print(up.training_banner() + (f" ({changed})" if changed else ""), flush=True)
        if args.demo:
            marker = settings.data_dir / "demo.json"
            if marker.exists():
                print(f"consult: the demo community is already loaded ({marker})")
                from .demo import describe

                print(describe(json.loads(marker.read_text(encoding="utf-8")), gateway, web))
            else:
                _load_demo(settings, gateway, web)
        print(f"consult: running. API {gateway}/api/v1 · OpenAPI {gateway}/api/openapi.json"
              + (f" · web pages {web}/" if web else "") + " · Ctrl-C stops.",
              flush=True)
        while all(p.poll() is None for _s, p in procs):
            time.sleep(0.5)
        dead = [s for s, p in procs if p.poll() is not None]
        print(f"consult: {', '.join(dead)} stopped; shutting down", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        up.stop(procs)


def _log_dir(settings) -> Path:
    path = settings.data_dir / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load_demo(settings, gateway: str, web: str | None = None) -> None:
    from . import demo

    with Rpc(settings) as rpc:
        result = demo.load(rpc, settings.data_dir)
    print(demo.describe(result, gateway, web))


def cmd_demo(args) -> int:
    settings = config.load()
    _load_demo(settings, f"http://127.0.0.1:{settings.http_port('gateway')}")
    return 0


def cmd_admin_token(args) -> int:
    with Rpc() as rpc:  # recorded in the platform's log with the operator as actor
        print(rpc.send(communities.BootstrapAdmin(label=args.label, actor=operator()))["token"])
    return 0


def cmd_dlq(args) -> int:
    settings = config.load()
    if args.dlq_cmd == "list":
        parked = dlq.list_parked(settings)
        if args.json:
            _print(parked)
        elif not parked:
            print("nothing is parked")
        for p in ([] if args.json else parked):
            if p.get("rejected"):
                print(f"{p['id']}  {p['consumer']} <- {p['source']}@{p['position']}  rejected (holds nothing) "
                      f"{p['parked_at']}\n    {p['error']}")
                continue
            print(f"{p['id']}  {p['consumer']} <- {p['source']}@{p['position']}  {p['type']}  "
                  f"parked {p['parked_at']}\n    {p['error']}")
        return 0
    if args.dlq_cmd == "drop-rejected":
        print(f"dropped {dlq.drop_rejected(settings, args.consumer, args.source)} rejected messages")
        return 0
    if args.dlq_cmd == "retry":
        moved = dlq.put_back(settings, event_id=args.id)
    else:
        if not args.all and not (args.consumer and args.source):
            raise CliError("say which stream: consult dlq resume CONSUMER SOURCE, or --all")
        moved = dlq.put_back(settings, consumer=args.consumer, source=args.source)
    for m in moved:
        print(f"put back {m['id']} ({m['consumer']} <- {m['source']}@{m['position']})")
    if not moved:
        print("nothing was parked there")
    return 0


def _print_erasure(request: dict) -> None:
    state = "complete" if request["complete"] else "in progress"
    print(f"erasure {request['id']} of {request['person']}, requested {request['requested_at']} by "
          f"{request['requested_by']}: {state}")
    for service, done in request["services"].items():
        mark = f"done {done['at']} ({done['texts']} texts)" if done.get("done") else "not yet"
        print(f"  {service:<14} {mark}")


def cmd_directory_erase(args) -> int:
    """PIPL art. 47: one request erases the person's texts and contact data in every service."""
    with Rpc() as rpc:
        _print_erasure(rpc.send(communities.RequestErasure(actor=operator(), community=args.community,
                                                           person=args.person, reason=args.reason)))
    return 0


def cmd_directory_erasure(args) -> int:
    """Which services have completed each erasure request for the person."""
    with Rpc() as rpc:
        status = rpc.send(communities.ErasureStatus(actor=operator(), community=args.community, person=args.person))
    if args.json:
        _print(status)
        return 0
    if not status["requests"]:
        print(f"no erasure was requested for {args.person}")
    for request in status["requests"]:
        _print_erasure(request)
    return 0 if all(r["complete"] for r in status["requests"]) else 4


def cmd_directory_import(args) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"no such file: {args.file}") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file} is not UTF-8 text") from None
    with Rpc() as rpc:
        job = rpc.send(communities.StartImport(actor=operator(), community=args.community, text=text, wait=IMPORT_WAIT_S))
        started = time.monotonic()
        while job["status"] == communities.IMPORT_RUNNING:  # a large file: the import runs on as a job
            print(f"importing {job['lines']} rows of {args.file} ({time.monotonic() - started:.0f} s)...", file=sys.stderr)
            time.sleep(IMPORT_POLL_S)
            job = rpc.send(communities.ImportStatus(actor=operator(), community=args.community, job=job["id"]))
    if job["status"] != communities.IMPORT_DONE:  # refused (the file's errors by line), or interrupted
        raise refused(job["problem"])
    result = job["result"]
    people = result["people"]
    print(f"imported {result['households']} households from {args.file} "
          f"({result['households_unchanged']} already in the directory as the file says); "
          f"{len(people['created'])} owners created, {len(people['matched'])} matched")
    for kind in ("created", "matched"):
        for p in people[kind]:
            renamed = " (name corrected)" if p.get("renamed") else ""
            lines = ", ".join(str(n) for n in p["lines"])
            print(f"  {kind:<8} {p['id']}  {p['name']}{renamed}  (line {lines})")
    return 0


def _register_bench(sub) -> None:
    """`consult bench` lives in the source tree's bench/ package (with the test harness it boots the
    platform with), not in the installed services: found from the checkout this command runs from."""
    root = str(Path(__file__).resolve().parents[2])
    if (Path(root) / "bench" / "platform.py").exists() and root not in sys.path:
        sys.path.append(root)
    try:
        from bench.platform import register
    except ModuleNotFoundError:
        return  # an installation without the source tree has no benchmarks
    register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consult", description="Democratic consultation platform (1+4+N).")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("up", help="run every service and the gateway")
    p.add_argument("--demo", action="store_true", help="load the demo S community on first start")
    p.add_argument("--db", help="PostgreSQL URL (default: SQLite files in the data folder)")
    p.add_argument("--data-dir", help="data folder (default ./consult-data)")
    p.add_argument("--verbose", action="store_true", help="service logs on the terminal")
    p.add_argument("--training", action="store_true",
                   help="a training deployment: a faster clock, every answer and record marked training (needs a "
                        "data folder of its own; a production one refuses)")
    p.add_argument("--clock-speed", type=float, metavar="N",
                   help="with --training: platform seconds per real second (default 1440, a day a minute)")
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("demo", help="load the demo community and print sign-in tokens")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("admin-token", help="issue a platform administrator token")
    p.add_argument("--label", default="platform admin")
    p.set_defaults(fn=cmd_admin_token)

    p = sub.add_parser("dlq", help="parked messages: list, retry, resume")
    dsub = p.add_subparsers(dest="dlq_cmd", required=True)
    q = dsub.add_parser("list", help="what is parked, and why")
    q.add_argument("--json", action="store_true")
    q = dsub.add_parser("retry", help="put one parked message back (by event id)")
    q.add_argument("id")
    q = dsub.add_parser("resume", help="put back everything parked for a stream and let it continue")
    q.add_argument("consumer", nargs="?")
    q.add_argument("source", nargs="?")
    q.add_argument("--all", action="store_true")
    q = dsub.add_parser("drop-rejected", help="delete messages set aside as no event of their source's log")
    q.add_argument("consumer", nargs="?")
    q.add_argument("source", nargs="?")
    p.set_defaults(fn=cmd_dlq)

    p = sub.add_parser("directory", help="the community directory")
    dsub = p.add_subparsers(dest="dir_cmd", required=True)
    q = dsub.add_parser("import", help="import households and owners from a CSV file (all or nothing)")
    q.add_argument("file")
    q.add_argument("--community", required=True)
    q.set_defaults(fn=cmd_directory_import)
    q = dsub.add_parser("erase", help="erase a person's texts and contact data in every service (PIPL)")
    q.add_argument("person")
    q.add_argument("--community", required=True)
    q.add_argument("--reason", required=True)
    q.set_defaults(fn=cmd_directory_erase)
    q = dsub.add_parser("erasure", help="which services have completed a person's erasure (exit 4: not all yet)")
    q.add_argument("person")
    q.add_argument("--community", required=True)
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=cmd_directory_erasure)

    _register_bench(sub)

    import importlib

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not name.startswith(exc.name or "?"):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args) or 0
    except CliError as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
