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
