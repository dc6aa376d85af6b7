"""The problem texts catalogue: every problem code in both languages, coded details rendered in the
client's language with the same `type`, and the display names the gateway adds beside person ids."""
from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import services
from services.common.errors import Conflict, DomainError, InvalidInput, NotFound
from services.common.problem_texts import (EN, LANGUAGES, MESSAGES, TERMS, TITLES, ZH, _fields, localise,
                                          negotiate)
from services.gateway import names
from services.gateway.router import internal_error, problem


# Process entry points: importing one monkey-patches this whole test process for eventlet (as it
# must in a service or the CLI), and every test after it in the same worker -- a browser test
# above all -- would then wait on eventlet's hub forever. Their modules raise no refusals of
# their own.
ENTRY_POINTS = {"services.common.runner", "services.cli.main"}


def _every_domain_error() -> set[type]:
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if module.name not in ENTRY_POINTS:
            importlib.import_module(module.name)

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    return {DomainError, *walk(DomainError)}


def test_every_problem_code_has_a_title_in_both_languages():
    codes = {cls.__name__ for cls in _every_domain_error()}
    # and every code the platform writes into a problem by hand (the gateway's own, RecordedButHeld)
    source = "\n".join(p.read_text() for p in Path(services.__file__).parent.rglob("*.py"))
    codes |= set(re.findall(r'code="([A-Za-z]+)"', source)) | set(re.findall(r'"code": "([A-Za-z]+)"', source))
    missing = sorted(c for c in codes if set(TITLES.get(c, {})) != set(LANGUAGES) or not all(TITLES[c].values()))
    assert not missing, f"problem codes without a title in both languages: {missing}"
    assert all(TITLES[c][ZH] != TITLES[c][EN] for c in codes)


def test_every_message_has_both_languages_with_the_same_parameters():
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGUAGES), key
        assert _fields(entry[ZH]) == _fields(entry[EN]), key


# Constructions of a DomainError subclass that take no message key, each with why:
# (file under services/, the function it is in) -> reason.
UNCODED: dict = {}  # none: another service's refusal is passed on as it came (errors.from_problem)


def _sources():
    root = Path(services.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if "problem_texts" not in path.parts:
            yield path.relative_to(root).as_posix(), ast.parse(path.read_text())


def _refusal_names() -> set[str]:
    return {cls.__name__ for cls in _every_domain_error()}


def _called_names(func) -> set[str]:
    """The class names a call's callee may be: X(...), errors.X(...), (X if c else Y)(...)."""
    if isinstance(func, ast.Name):
        return {func.id}
    if isinstance(func, ast.Attribute):
        return {func.attr}
    if isinstance(func, ast.IfExp):
        return _called_names(func.body) | _called_names(func.orelse)
    return set()


def _uncoded_refusals():
    names = _refusal_names()
    for path, tree in _sources():
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_names(node.func) & names:
                where = next((f.name for f in functions if f.lineno <= node.lineno <= f.end_lineno
                              and not any(g is not f and f.lineno < g.lineno <= node.lineno <= g.end_lineno
                                          for g in functions)), "<module>")
                yield path, where, node.lineno, ast.unparse(node)[:100]


def test_every_refusal_is_coded_so_its_detail_follows_the_language():
    """A refusal raised with an English sentence reaches a Chinese client in English: every one is
    made with `.coded(key, **params)` (or relayed with its key), except the few listed above."""
    found = list(_uncoded_refusals())
    plain = [f"{path}:{line} {code}" for path, where, line, code in found if (path, where) not in UNCODED]
    assert not plain, "refusals with a plain detail (use X.coded):\n" + "\n".join(plain)
    stale = set(UNCODED) - {(path, where) for path, where, _, _ in found}
    assert not stale, f"allowed uncoded refusals that are gone: {stale}"


def _key_constants() -> set[str]:
    """Every string in the code that has the shape of a message key of an area the catalogue knows
    (a key is often passed on in a variable before it reaches .coded)."""
    areas = {key.split(".")[0] for key in MESSAGES}
    return {node.value for _, tree in _sources() for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and re.fullmatch(r"[a-z]+(\.[a-z0-9_]+)?", node.value) and node.value.split(".")[0] in areas
            and not node.value.endswith(".html")}


def test_every_coded_refusal_in_the_code_has_its_message():
    names = _refusal_names()
    coded = [(path, node.lineno, node.args[0]) for path, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "coded"
             and _called_names(node.func.value) & names]
    assert len(coded) > 400
    literal = {arg.value for _, _, arg in coded if isinstance(arg, ast.Constant)}
    assert not literal - set(MESSAGES), sorted(literal - set(MESSAGES))
    dotted = {key for key in _key_constants() if "." in key}
    assert not dotted - set(MESSAGES), f"keys in the code the catalogue lacks: {sorted(dotted - set(MESSAGES))}"
    unused = set(MESSAGES) - _key_constants()
    assert not unused, f"messages no code uses: {sorted(unused)}"
    # a refusal fills in exactly the fields of its message (else it would read as its bare key)
    wrong = [f"{path}:{line} {arg.value}" for path, line, arg, call in
             ((path, node.lineno, node.args[0], node) for path, tree in _sources() for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "coded"
              and _called_names(node.func.value) & names and isinstance(node.args[0], ast.Constant))
             if arg.value in MESSAGES
             and {k.arg for k in call.keywords if k.arg != "extra"} != _fields(MESSAGES[arg.value][EN])]
    assert not wrong, wrong


def test_every_coded_refusal_renders_in_both_languages_with_json_parameters():
    """Parameters travel in the RPC reply: a Decimal or an id arrives as the text it read as."""
    from decimal import Decimal

    error = Conflict.coded("actions.task_complete_yet", unfinished_count=Decimal("2"))
    assert error.message == {"key": "actions.task_complete_yet", "params": {"unfinished_count": "2"}}
    assert error.detail == "2 task(s) are not complete yet"
    assert localise(error.to_problem(), "zh-CN")["detail"] == "还有 2 项任务未完成"
    relayed = NotFound.relayed(json.loads(json.dumps(error.to_problem())))
    assert relayed.detail == error.detail and relayed.message == error.message


# Guards that take what could not be done, or what does not exist, in words (after the first argument).
WORDED = {"require_convener", "require_member", "require_author", "_check_worker", "_check_person",
          "_check_serial_unused", "_load", "parse_id"}


def test_the_words_a_refusal_carries_read_in_chinese_too():
    words = set()
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                args = [k.value for k in node.keywords if k.arg in ("doing", "what", "paper")]
                if _called_names(node.func) & WORDED:
                    args += node.args[1:]
            elif isinstance(node, ast.FunctionDef):
                positional = node.args.args[len(node.args.args) - len(node.args.defaults):]
                args = [d for a, d in zip(positional, node.args.defaults) if a.arg in ("doing", "what", "paper")]
            else:
                continue
            words |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    assert len(words) > 40 and not words - set(TERMS), sorted(words - set(TERMS))
    error = Conflict.coded("decisions.ballot", doing="open the ballot", status="closed")
    assert error.detail == localise(error.to_problem(), "en")["detail"] == "cannot open the ballot: the ballot is closed"
    assert localise(error.to_problem(), "zh-CN")["detail"] == "不能开启表决：表决当前状态为 closed"


def test_the_language_follows_accept_language_and_defaults_to_chinese():
    assert negotiate(None) == negotiate("") == ZH
    assert negotiate("en") == negotiate("en-GB,en;q=0.9") == EN
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == negotiate("zh-Hans") == ZH
    assert negotiate("fr-FR, en;q=0.5") == EN and negotiate("fr") == ZH
    assert negotiate("en;q=0.3, zh;q=0.7") == ZH and negotiate("zh;q=0, en") == EN
    assert negotiate("en;q=abc") == ZH


def test_a_coded_refusal_reads_in_either_language_with_the_same_type():
    error = InvalidInput.coded("vote.invalid_choice", reason="choice must be one of ('a', 'b')", options="a = 恢复草坪",
                               extra={"options": [{"id": "a", "title": "恢复草坪"}]})
    assert error.detail == "invalid choice: choice must be one of ('a', 'b'). The options are: a = 恢复草坪"
    raw = error.to_problem()
    zh, en = localise(raw, "zh-CN"), localise(raw, "en-US")
    assert zh["type"] == en["type"] == raw["type"] == "https://consult.example/problems/InvalidInput"
    assert (zh["title"], en["title"]) == ("输入无效", "Invalid input")
    assert zh["detail"].startswith("选择无效：") and "a = 恢复草坪" in zh["detail"]
    assert en["detail"] == error.detail and zh["options"] == en["options"] == [{"id": "a", "title": "恢复草坪"}]
    assert "i18n" not in zh and "i18n" not in en, "the key and parameters stay inside the platform"
    assert localise(raw, None)["detail"] == zh["detail"]


def test_an_uncoded_detail_keeps_its_english_text_under_a_translated_title():
    raw = Conflict("the ballot is closed").to_problem()
    zh = localise(raw, None)
    assert zh["title"] == "与当前状态冲突" and zh["detail"] == "the ballot is closed"
    unknown = dict(NotFound("x").to_problem(), i18n={"key": "no.such.key", "params": {}})
    assert localise(unknown, "zh-CN")["detail"] == "x"
    assert localise(problem(405, "Method not allowed", "PATCH is not allowed here",
                            i18n={"key": "route.method", "params": {"method": "PATCH"}}), "zh")["detail"] == \
        "此处不允许 PATCH 请求"
    crash = localise(internal_error("test", ValueError("boom")), "zh-CN")
    assert crash["title"] == "服务器内部错误" and crash["incident"] in crash["detail"]


def test_names_stand_beside_ids_and_the_recorded_event_data_is_left_alone():
    a, b, erased, household = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
                               "33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444")
    asked = []

    def ask(community, ids):
        asked.append((community, ids))
        return {a: "王芳", b: "李强", erased: None}

    answer = {"body": [{"person": a, "role": "convener"}, {"person": erased, "role": "resident"}],
              "quorum": {"present": [a, b]}, "roll": [{"voter": household}],
              "items": [{"actor": b, "data": {"person": a}, "envelope": {"actor": b}}]}
    named = names.with_names(answer, "c", ask)
    assert asked == [("c", sorted({a, b, erased, household}))]
    assert named["body"] == [{"person": a, "role": "convener", "person_name": "王芳"},
                             {"person": erased, "role": "resident", "person_name": None}]
    assert named["quorum"]["present_names"] == {a: "王芳", b: "李强"}
    assert named["roll"] == [{"voter": household}], "not a person of the community: no name key"
    assert named["items"][0]["actor_name"] == "李强"
    assert named["items"][0]["data"] == {"person": a} and named["items"][0]["envelope"] == {"actor": b}
    assert names.with_names({"x": 1}, "c", ask) == {"x": 1} and len(asked) == 1, "no ids: no call"

    def down(community, ids):
        raise TimeoutError

    assert names.with_names(answer, "c", down) == answer
