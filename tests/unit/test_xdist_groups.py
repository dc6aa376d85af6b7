"""The suite's own xdist scheduler: a worker that crashes does not get its crashed test run again."""
from collections import OrderedDict
from types import SimpleNamespace

from tests.xdist_groups import BackendScheduling, group_of


class _Node:
    def __init__(self, name):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent = []

    def send_runtest_some(self, indexes):
        self.sent.append(list(indexes))

    def shutdown(self):
        self.shutting_down = True


def _scheduler():
    sched = BackendScheduling.__new__(BackendScheduling)
    sched.assigned_work = OrderedDict()
    sched.workqueue = OrderedDict()
    sched.registered_collections = OrderedDict()
    sched.log = lambda *a, **k: None
    return sched


def test_groups_follow_the_backend_parameter_or_the_file():
    assert group_of("tests/integration/test_x.py::test_a[sqlite]") == "backend-sqlite"
    assert group_of("tests/integration/test_x.py::test_a[zh-postgres]") == "backend-postgres"
    assert group_of("tests/unit/test_y.py::test_b[sqlite3-row]") == "tests/unit/test_y.py"


def test_a_crashed_test_is_not_given_to_the_replacement_but_the_tests_after_it_are():
    sched = _scheduler()
    crashed, other = _Node("gw0"), _Node("gw1")
    ids = ["t.py::a[sqlite]", "t.py::b[sqlite]", "t.py::c[sqlite]"]
    sched.assigned_work[crashed] = {"backend-sqlite": {ids[0]: True, ids[1]: False, ids[2]: False}}
    sched.assigned_work[other] = {}
    other.shutting_down = True  # it has finished its own work
    assert sched.remove_node(crashed) == ids[1]
    assert sched.workqueue == {"backend-sqlite": {ids[0]: True, ids[1]: True, ids[2]: False}}


def test_a_unit_whose_last_test_crashed_is_not_queued_again():
    sched = _scheduler()
    crashed, other = _Node("gw0"), _Node("gw1")
    other.shutting_down = True
    sched.assigned_work[crashed] = {"t.py": {"t.py::a": True, "t.py::b": False}}
    sched.assigned_work[other] = {}
    assert sched.remove_node(crashed) == "t.py::b"
    assert not sched.workqueue


def test_units_go_out_longest_expected_first_and_unknown_ones_by_their_tests():
    units = {"tests/unit/test_many.py": {f"m{i}": False for i in range(40)},  # 40 tests, unknown: 80 s
             "tests/reliability/test_cluster.py": {"c": False},  # one test, 240 s
             "backend-sqlite": {"s": False}, "tests/unit/test_few.py": {"f": False}}
    durations = {"backend-sqlite": 600.0, "tests/reliability/test_cluster.py": 240.0, "tests/unit/test_few.py": 3.0}
    from tests.xdist_groups import by_expected_time

    assert by_expected_time(units, durations) == ["backend-sqlite", "tests/reliability/test_cluster.py",
                                                  "tests/unit/test_many.py", "tests/unit/test_few.py"]


def test_the_first_unit_handed_out_is_the_longest_expected(monkeypatch):
    import tests.xdist_groups as groups

    monkeypatch.setattr(groups, "load_durations", lambda: {"slow.py": 300.0, "backend-sqlite": 900.0})
    sched = _scheduler()
    node = _Node("gw0")
    sched.registered_collections[node] = ["quick.py::a", "quick.py::b", "slow.py::a", "x.py::a[sqlite]"]
    sched.workqueue.update([("quick.py", {"quick.py::a": False, "quick.py::b": False}),
                            ("slow.py", {"slow.py::a": False}), ("backend-sqlite", {"x.py::a[sqlite]": False})])
    sched._assign_work_unit(node)
    sched._assign_work_unit(node)
    assert list(sched.assigned_work[node]) == ["backend-sqlite", "slow.py"]
    assert node.sent == [[3], [2]]


def test_durations_are_summed_per_unit_from_a_timelog():
    from tests.xdist_groups import durations_from_timelog

    lines = ["1.0 gw0 start a.py::t[sqlite]", "2.0 gw0 end 10.5 a.py::t[sqlite]", "2.0 gw1 end 2.0 b.py::u",
             "3.0 gw1 end 1.5 b.py::v", "4.0 gw0 end 0.5 c.py::w[postgres]"]
    assert durations_from_timelog(lines) == {"backend-sqlite": 10.5, "b.py": 3.5, "backend-postgres": 0.5}
