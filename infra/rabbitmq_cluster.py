"""A throwaway three-node RabbitMQ cluster on this machine, for tests that need a real one.

Why: a quorum queue only shows what it is worth on a cluster, and what the platform does when a
broker node goes away (stopped, or killed -9) can only be seen with real nodes. This starts extra
nodes of the installed RabbitMQ (Debian's package, `rabbitmq-server` 3.10) beside whatever runs on
5672, each a separate process under this user, everything in one temporary folder, and removes them
all afterwards. It never touches the system node, its data or its cookie
(/var/lib/rabbitmq/.erlang.cookie): `/usr/sbin/rabbitmqctl` runs as the `rabbitmq` user with that
cookie, so this module calls the scripts under /usr/lib/rabbitmq/bin directly, as the current user.

How a node is made (found by experiment on RabbitMQ 3.10.8 / Erlang 25). Every node's process gets:

    HOME=<root>                        the Erlang cookie is read from $HOME/.erlang.cookie (mode 0400):
                                       one random cookie for the cluster's nodes and its CLI calls
    RABBITMQ_CONF_ENV_FILE=<root>/rabbitmq-env.conf   an empty file: the package's
                                       /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost)
                                       would otherwise be sourced by the scripts
    RABBITMQ_NODENAME=consult-<tag>-r<i>@localhost
    RABBITMQ_NODE_PORT, RABBITMQ_DIST_PORT    AMQP port, and Erlang distribution port (the default,
                                       AMQP + 20000, is set explicitly all the same)
    RABBITMQ_CONFIG_FILE=<node>/rabbitmq.conf  `listeners.tcp.local = 127.0.0.1:<amqp port>`
    RABBITMQ_ENABLED_PLUGINS_FILE=<node>/enabled_plugins  `[].`: no plugin, no management port
    RABBITMQ_ADVANCED_CONFIG_FILE=<node>/advanced.config (absent)
    RABBITMQ_MNESIA_BASE=<node>/mnesia, RABBITMQ_LOG_BASE=<node>/log, RABBITMQ_PID_FILE=<node>/pid
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}
                                       the distribution port listens on loopback only (0.0.0.0
                                       otherwise)

The node runs in the foreground (`rabbitmq-server` without -detached, in a session of its own):
the script is a shell that starts the Erlang VM (beam.smp) as its child and waits for it. The VM's
OS pid is in the pid file once the node booted. The nodes share the machine's epmd (port 4369,
started by the system node), which is why their names must differ from every other node's (where
no epmd runs, the first node starts one, as every Erlang node does, and it outlives the cluster).

The CLI is `/usr/lib/rabbitmq/bin/rabbitmqctl -n <node> …` with the same HOME and
RABBITMQ_CONF_ENV_FILE. The cluster is formed the documented way: node 1 boots alone, and every
other node, once booted, runs `stop_app`, `join_cluster <node 1>`, `start_app`; `cluster_status
--formatter json` lists the running nodes. A node restarted later (after a stop or a kill -9) finds
its cluster membership in its Mnesia folder and rejoins by itself.

    with RabbitCluster(3) as cluster:          # started, joined, waited for
        uri = cluster.amqp_uri()                # 'amqp://guest:guest@127.0.0.1:5681/;…;…:5683/'
        cluster.stop_node(0)                    # rabbitmqctl stop: a graceful shutdown
        cluster.kill_node(1)                    # kill -9 of the node's VM: a crash
        cluster.start_node(0); cluster.start_node(1)
        cluster.wait_running(3)
                                                # leaving the block kills every node, removes the folder

`python -m infra.rabbitmq_cluster` starts one, prints its URI and status, and tears it down on
Ctrl-C. The guest user may log in (from 127.0.0.1 only, RabbitMQ's default), on the default vhost.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

RABBITMQ_BIN = Path(os.environ.get("CONSULT_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
HOST = "localhost"  # the host part of the node names (what epmd on this machine answers for)
DIST_OFFSET = 20000  # RabbitMQ's own rule for the distribution port: AMQP port + 20000


class ClusterError(RuntimeError):
    pass


@dataclass
class Node:
    index: int
    name: str
    amqp_port: int
    dist_port: int
    dir: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    log_files: list = field(default_factory=list)

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    def vm_pid(self) -> int | None:
        """The OS pid of the node's Erlang VM (beam.smp), once it booted."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(size: int, preferred: int = 5681) -> int:
    """An AMQP port p such that p..p+size-1 and their distribution ports (+20000) are free now,
    all below Linux's ephemeral range (32768), where an outgoing connection could take one."""
    import random

    candidates = [preferred] + [random.randrange(5700, 12000, 10) for _ in range(200)]
    for base in candidates:
        ports = [base + i for i in range(size)] + [base + i + DIST_OFFSET for i in range(size)]
        if max(ports) < 32768 and all(_port_free(p) for p in ports):
            return base
    raise ClusterError("no free ports for a RabbitMQ cluster")


class RabbitCluster:
    """`size` RabbitMQ nodes clustered together, in a temporary folder of their own (see the module)."""

    def __init__(self, size: int = 3, base_port: int | None = None, root: Path | None = None,
                 startup_timeout: float = 120):
        self.size = size
        self.tag = secrets.token_hex(3)
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="consult-rabbit-"))
        self.startup_timeout = startup_timeout
        base = base_port or free_base_port(size)
        self.nodes = [Node(i, f"consult-{self.tag}-r{i + 1}@{HOST}", base + i, base + i + DIST_OFFSET,
                           self.root / f"r{i + 1}") for i in range(size)]
        self.env = self._base_env()

    # -- environment ---------------------------------------------------------------------------
    def _base_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(HOME=str(self.root), RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),
                   LANG="C.UTF-8", LC_ALL="C.UTF-8")
        return env

    def node_env(self, node: Node) -> dict:
        return dict(
            self.env,
            RABBITMQ_NODENAME=node.name,
            RABBITMQ_NODE_PORT=str(node.amqp_port),
            RABBITMQ_DIST_PORT=str(node.dist_port),
            RABBITMQ_CONFIG_FILE=str(node.dir / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(node.dir / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(node.dir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(node.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(node.dir / "log"),
            RABBITMQ_PID_FILE=str(node.pid_file),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def _write_files(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cookie = self.root / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
        (self.root / "rabbitmq-env.conf").write_text("")
        for node in self.nodes:
            node.dir.mkdir(parents=True, exist_ok=True)
            (node.dir / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\n"
                "log.console = false\n"
                "log.file.level = info\n")
            (node.dir / "enabled_plugins").write_text("[].\n")

    # -- addresses -----------------------------------------------------------------------------
    def amqp_uri(self, vhost: str = "", user: str = "guest", password: str = "guest") -> str:
        """Every node's URL separated by `;`, which kombu (and so nameko) takes as failover alternates."""
        return ";".join(f"amqp://{user}:{password}@127.0.0.1:{n.amqp_port}/{vhost}" for n in self.nodes)

    # -- the CLI -------------------------------------------------------------------------------
    def ctl(self, *args: str, node: int | None = None, timeout: float = 60, check: bool = True) -> str:
        """`rabbitmqctl -n <node> …` against one node (by default the first that is running)."""
        target = self.nodes[node] if node is not None else self._a_running_node()
        proc = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", target.name, *args],
                              env=self.env, cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ClusterError(f"rabbitmqctl -n {target.name} {' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def _a_running_node(self) -> Node:
        for node in self.nodes:
            if node.alive:
                return node
        raise ClusterError("no node of the cluster is running")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "RabbitCluster":
        """Boot every node (at once), join nodes 2..N to node 1, wait until all N run together."""
        self._write_files()
        try:
            with ThreadPoolExecutor(self.size) as pool:
                list(pool.map(lambda n: self.start_node(n.index), self.nodes))
            first = self.nodes[0].name
            for node in self.nodes[1:]:
                self.ctl("stop_app", node=node.index)
                self.ctl("join_cluster", first, node=node.index)
                self.ctl("start_app", node=node.index)
            self.wait_running(self.size)
        except BaseException:
            self.teardown()
            raise
        return self

    def start_node(self, index: int, wait: bool = True) -> None:
        """Start one node (again): after a stop or a kill it rejoins the cluster by itself."""
        node = self.nodes[index]
        if node.alive:
            raise ClusterError(f"{node.name} is already running")
        node.pid_file.unlink(missing_ok=True)
        node.starts += 1
        out = open(node.dir / f"server-{node.starts}.out", "ab")  # noqa: SIM115 - the child keeps it
        node.proc = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env=self.node_env(node),
                                     cwd=node.dir, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        if wait:
            self.wait_node(index)

    def wait_node(self, index: int, timeout: float | None = None) -> None:
        """Until the node has booted (`rabbitmqctl await_startup`)."""
        node = self.nodes[index]
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while time.monotonic() < deadline:
            if not node.alive:
                raise ClusterError(f"{node.name} exited ({node.proc.returncode if node.proc else None}):\n"
                                   + self.log(index)[-3000:])
            left = max(1.0, deadline - time.monotonic())
            done = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", node.name, "await_startup",
                                   "--timeout", str(int(left))], env=self.env, cwd=self.root,
                                  capture_output=True, text=True, timeout=left + 30)
            if done.returncode == 0:
                return
            time.sleep(0.5)  # the VM is not up enough to be asked yet
        raise ClusterError(f"{node.name} did not boot within its time:\n" + self.log(index)[-3000:])

    def stop_node(self, index: int, timeout: float = 60) -> None:
        """A graceful shutdown (`rabbitmqctl stop`): the node hands over its queues' leadership and
        closes its clients' connections; its peers see it leave."""
        node = self.nodes[index]
        if not node.alive:
            return
        self.ctl("stop", node=index, timeout=timeout, check=False)
        try:
            node.proc.wait(timeout)
        except subprocess.TimeoutExpired:  # the wrapper passes SIGTERM on to the VM, which stops
            node.proc.send_signal(signal.SIGTERM)
            node.proc.wait(30)

    def kill_node(self, index: int) -> None:
        """kill -9 of the node's Erlang VM, as a crash (or a pulled plug) would end it: no goodbye
        to its peers or its clients. Its wrapper script then exits by itself."""
        node = self.nodes[index]
        if not node.alive:
            return
        pid = node.vm_pid()
        if pid is None:
            raise ClusterError(f"{node.name} has no pid file yet")
        os.kill(pid, signal.SIGKILL)
        try:
            node.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait(10)

    def restart_node(self, index: int) -> None:
        self.stop_node(index)
        self.start_node(index)

    def running_nodes(self) -> set[str]:
        """The running nodes of the cluster, as a running node of it sees them."""
        for node in self.nodes:
            if not node.alive:
                continue
            try:
                status = json.loads(self.ctl("cluster_status", "--formatter", "json", node=node.index, timeout=30))
            except (ClusterError, ValueError, subprocess.TimeoutExpired):
                continue
            return set(status.get("running_nodes", ()))
        return set()

    def wait_running(self, count: int, timeout: float | None = None) -> set[str]:
        """Until the cluster has `count` running nodes (and says so)."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        running: set[str] = set()
        while time.monotonic() < deadline:
            running = self.running_nodes()
            if len(running) == count:
                return running
            time.sleep(0.5)
        raise ClusterError(f"the cluster has {len(running)} running nodes, not {count}: {sorted(running)}")

    def log(self, index: int) -> str:
        node = self.nodes[index]
        parts = []
        for path in sorted(node.dir.glob("server-*.out")) + sorted((node.dir / "log").glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def teardown(self) -> None:
        """Kill every node of this cluster (only its own processes, by pid) and remove its folder."""
        for node in self.nodes:
            if node.alive:
                pid = node.vm_pid()
                try:
                    if pid:
                        os.kill(pid, signal.SIGKILL)
                    os.killpg(node.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    node.proc.wait(30)
                except subprocess.TimeoutExpired:
                    pass
        for node in self.nodes:  # its VM, if it outlived its wrapper (a kill of the wrapper alone)
            pid = node.vm_pid()
            if pid and _is_our_vm(pid, node):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if os.environ.get("CONSULT_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "RabbitCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.teardown()


def _is_our_vm(pid: int, node: Node) -> bool:
    """Whether pid is still this node's VM (not a recycled pid): its command line names the node."""
    try:
        return node.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def main() -> int:
    cluster = RabbitCluster(3)
    started = time.monotonic()
    with cluster:
        print(f"cluster of {cluster.size} up in {time.monotonic() - started:.1f} s, folder {cluster.root}")
        print("CONSULT_AMQP_URI=" + cluster.amqp_uri())
        print(cluster.ctl("cluster_status"))
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
