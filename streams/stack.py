"""The local stack without Docker: a real Apache Kafka broker (KRaft) and a real Redis.

This module owns fetching Kafka's jars from Maven Central (through ``mvn`` and
``streams/data/kafka/pom.xml``, a package resource), formatting KRaft storage, starting ``kafka.Kafka`` and
Debian's ``redis-server`` on loopback, waiting until both answer, and stopping
exactly the processes it started (pid files checked against the process command
line, so a recycled pid is never killed). Used by ``skyfence stack`` and by the
session-scoped test fixtures.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from streams.settings import Settings

# The Maven project that resolves the Kafka jars and Kafka's log4j2 configuration ship inside the
# package (importlib.resources). Maven and the JVM need file paths: an installed package is a folder
# on disk (setuptools installs unzipped), so the resource's path is used as such.
POM = Path(str(resources.files("streams").joinpath("data", "kafka", "pom.xml")))
LOG4J2 = Path(str(resources.files("streams").joinpath("data", "kafka", "log4j2.properties")))
# 90 s: a cold JVM on a loaded 2-core CI machine has been seen to take ~10x its usual 2 s.
START_TIMEOUT_S = 90.0
# 15 s: Kafka's controlled shutdown on one node finishes in ~2 s; after that we SIGKILL.
STOP_TIMEOUT_S = 15.0


class StackError(RuntimeError):
    """The stack cannot start or stop; the message names the cause and the fix."""


# Ports below the kernel's ephemeral range, where free_port() picks. bind(0) hands out a port
# from the ephemeral range, the range every outgoing connection (our own Kafka and Redis
# clients among them) also draws from: between the probe and the service's own bind, a client
# could take it (seen as a flaky "address in use" on a busy host). Below that range only
# another picker can collide, and a random pick over ~12,000 ports makes that unlikely.
_PICK_FLOOR = 20000


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(exclude: Collection[int] = ()) -> int:
    """A loopback TCP port nobody listens on, outside the ephemeral range when there is room,
    and none of ``exclude`` (ports already picked for the same start: nobody listens on them
    yet, so a second pick could otherwise return one of them)."""
    top = _ephemeral_floor()
    rng = random.SystemRandom()
    for _ in range(64 if top - _PICK_FLOOR > 1000 else 0):
        port = rng.randrange(_PICK_FLOOR, top)
        if port in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in exclude:
            return port
    raise OSError("no free loopback port")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _require(tool: str, fix: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise StackError(f"{tool} not found on PATH; {fix}")
    return path


def jars_dir(settings: Settings) -> Path:
    """Jars are cached per Kafka version, shared by every stack dir on the machine."""
    return settings.resolve(".cache/kafka") / settings.kafka_version / "libs"


def fetch_kafka_jars(settings: Settings, log: Callable[[str], None] = print) -> Path:
    """Resolve org.apache.kafka:kafka_2.13 and its runtime dependencies once."""
    target = jars_dir(settings)
    marker = target / ".complete"
    if marker.exists():
        return target
    _require("java", "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)")
    mvn = _require("mvn", "install Maven (Debian: apt-get install maven)")
    target.mkdir(parents=True, exist_ok=True)
    log(f"resolving Kafka {settings.kafka_version} jars from Maven Central into {target}")
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        f"-Dkafka.version={settings.kafka_version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={target}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not list(target.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"mvn could not resolve Kafka {settings.kafka_version} (exit {proc.returncode}); "
            f"check that Maven Central is reachable and SKYFENCE_KAFKA_VERSION is a real version.\n"
            + (proc.stdout + proc.stderr)[-2000:]
        )
    marker.write_text(settings.kafka_version)
    return target


@dataclass(frozen=True)
class StackSecurity:
    """Optional authentication and TLS for the local stack (security tests, deployment rehearsals).

    ``kafka_users``: name -> password, accepted with SASL SCRAM-SHA-512 and PLAIN on the
    client listener (the only listener clients can reach; the broker talks to itself
    over SASL PLAIN as ``kafka_admin``). ``kafka_tls``: PEM paths (certificate, key, CA):
    that listener is then SASL_SSL. ``redis_users``: ACL users with full rights;
    Redis's passwordless ``default`` user is switched off. ``redis_tls``: PEM paths
    (certificate, key, CA): Redis then speaks only TLS on its port.
    """

    kafka_users: Mapping[str, str] = field(default_factory=dict)
    kafka_tls: tuple[str, str, str] | None = None
    redis_users: Mapping[str, str] = field(default_factory=dict)
    redis_tls: tuple[str, str, str] | None = None
    # The broker's own inter-broker login: random per process, nobody configures or needs it.
    kafka_admin: tuple[str, str] = ("broker", uuid.uuid4().hex)


@dataclass
class Service:
    name: str
    port: int
    pid_file: Path
    log_file: Path
    # Fragments of the command line that prove a pid is ours (not a recycled pid).
    signature: tuple[str, ...]
    # Where this start's log begins: the log is appended to across restarts.
    log_offset: int = 0

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_matches(pid, self.signature) else None

    def running(self) -> bool:
        return self.pid() is not None

    def raw_pid_alive(self) -> bool:
        # During start-up the JVM launcher may re-exec, leaving cmdline briefly empty,
        # so only liveness (not the signature) is checked while waiting for it.
        try:
            return _alive(int(self.pid_file.read_text().strip()))
        except (OSError, ValueError):
            return False


def _pid_matches(pid: int, signature: tuple[str, ...]) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return all(part in cmdline for part in signature)


class LocalStack:
    """One broker and one Redis in ``run_dir``; ports 0 mean "choose free ports"."""

    def __init__(self, settings: Settings, run_dir: Path | None = None,
                 security: StackSecurity | None = None) -> None:
        self.settings = settings
        self.security = security or StackSecurity()
        self.run_dir = (run_dir or settings.resolve(settings.stack_dir)).resolve()
        self.state_file = self.run_dir / "ports"
        kafka_port, redis_port = self._ports()
        self.kafka = Service(
            "kafka",
            kafka_port,
            self.run_dir / "kafka.pid",
            self.run_dir / "kafka.log",
            signature=(f"-Dskyfence.stack={self.run_dir}",),
        )
        self.redis = Service(
            "redis",
            redis_port,
            self.run_dir / "redis.pid",
            self.run_dir / "redis.log",
            signature=("redis-server", str(redis_port)),
        )

    # ports are remembered so that `stack status`/`down` find what `up` chose
    def _ports(self) -> tuple[int, int]:
        try:
            k, r = self.state_file.read_text().split()
            if int(k) and int(r):
                return int(k), int(r)
        except (OSError, ValueError):
            pass
        return self.settings.kafka_port, self.settings.redis_port

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka.port}"

    @property
    def redis_url(self) -> str:
        scheme = "rediss" if self.security.redis_tls else "redis"
        return f"{scheme}://127.0.0.1:{self.redis.port}/0"

    def settings_for_clients(self) -> Settings:
        return self.settings.replace(broker=f"kafka://{self.bootstrap}", redis_url=self.redis_url)

    # --- up ---------------------------------------------------------------------------
    def up(self, log: Callable[[str], None] = print) -> dict[str, float]:
        """Start both services (idempotent). Returns seconds each took to answer."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.kafka.running() and not self.redis.running():
            k = self.kafka.port or free_port()
            r = self.redis.port or free_port(exclude={k})
            self.kafka.port, self.redis.port = k, r
            self.redis.signature = ("redis-server", str(r))
        self.state_file.write_text(f"{self.kafka.port} {self.redis.port}\n")
        timings: dict[str, float] = {}
        redis_bin = _require(
            "redis-server", "install it with: apt-get install -y redis-server (dev/setup.sh does this)"
        )
        if not self.redis.running():
            self._check_port_free(self.redis, "SKYFENCE_REDIS_PORT")
            t0 = time.monotonic()
            self._start_redis(redis_bin)
            self._wait(self.redis, lambda: _redis_ping(self.redis.port, self.security.redis_tls))
            timings["redis_s"] = time.monotonic() - t0
        if not self.kafka.running():
            jars = fetch_kafka_jars(self.settings, log)
            self._check_port_free(self.kafka, "SKYFENCE_KAFKA_PORT")
            t0 = time.monotonic()
            self._start_kafka(jars)
            self._wait(self.kafka, lambda: _kafka_ready(self.kafka, self.kafka.port))
            timings["kafka_s"] = time.monotonic() - t0
        return timings

    def _check_port_free(self, svc: Service, setting: str) -> None:
        if port_open(svc.port):
            raise StackError(
                f"port {svc.port} for {svc.name} is already in use by another process; "
                f"stop it or set {setting} to a free port (0 picks one)"
            )

    def _start_redis(self, redis_bin: str) -> None:
        data = self.run_dir / "redis-data"
        data.mkdir(exist_ok=True)
        cmd = [
            redis_bin,
            "--bind", "127.0.0.1",
            "--port", str(self.redis.port),
            "--dir", str(data),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        sec = self.security
        if sec.redis_users:
            # an ACL file, not --user arguments: passwords must not show in the process list
            acl = self.run_dir / "users.acl"
            acl.touch(mode=0o600)
            acl.write_text("user default off\n" + "".join(
                f"user {name} on >{pw} ~* &* +@all\n" for name, pw in sec.redis_users.items()))
            cmd += ["--aclfile", str(acl)]
        if sec.redis_tls:
            cert, key, ca = sec.redis_tls
            cmd += ["--port", "0", "--tls-port", str(self.redis.port), "--tls-cert-file", cert,
                    "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        self._spawn(self.redis, cmd)

    def _start_kafka(self, jars: Path) -> None:
        java = _require("java", "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)")
        data = self.run_dir / "kafka-data"
        controller_port = free_port(exclude={p for p in (self.kafka.port, self.redis.port) if p})
        props = self.run_dir / "server.properties"
        text = _server_properties(self.kafka.port, controller_port, data, self.settings.partitions)
        if self.security.kafka_users:
            keystore = None
            if self.security.kafka_tls:
                cert, key, _ca = self.security.kafka_tls
                keystore = self.run_dir / "kafka-keystore.pem"
                keystore.touch(mode=0o600)
                keystore.write_text(Path(key).read_text() + Path(cert).read_text())
            text = _sasl_properties(text, self.kafka.port, self.security, keystore)
        props.touch(mode=0o600)  # may hold SASL passwords
        props.write_text(text)
        cp = f"{jars}/*"
        if not (data / "meta.properties").exists():
            cluster_id = _cluster_id()
            scram = []
            for name, pw in self.security.kafka_users.items():
                scram += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={pw}]"]
            proc = subprocess.run(
                [java, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                 *scram],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise StackError(f"Kafka storage format failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
        cmd = [
            java,
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.run_dir}",
            f"-Dskyfence.stack={self.run_dir}",
            "-cp",
            cp,
            "kafka.Kafka",
            str(props),
        ]
        self._spawn(self.kafka, cmd)

    def _spawn(self, svc: Service, cmd: list[str]) -> None:
        svc.log_offset = svc.log_file.stat().st_size if svc.log_file.exists() else 0
        with open(svc.log_file, "ab") as logf:
            proc = subprocess.Popen(
                cmd,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # own session: Ctrl-C in the terminal does not reach it; we stop it ourselves
                start_new_session=True,
                cwd=self.run_dir,
            )
        svc.pid_file.write_text(f"{proc.pid}\n")

    def _wait(self, svc: Service, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not svc.raw_pid_alive():
                tail = _tail(svc.log_file)
                raise StackError(f"{svc.name} exited during start-up; last log lines:\n{tail}")
            if ready():
                return
            time.sleep(0.1)
        raise StackError(
            f"{svc.name} did not answer on port {svc.port} within {START_TIMEOUT_S:.0f} s; "
            f"see {svc.log_file}:\n{_tail(svc.log_file)}"
        )

    # --- down -------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop our own processes (Kafka first, so it can still reach nothing it needs)."""
        stopped = []
        for svc in (self.kafka, self.redis):
            pid = svc.pid()
            if pid is not None:
                _terminate(pid)
                stopped.append(f"{svc.name} (pid {pid})")
            svc.pid_file.unlink(missing_ok=True)
        return stopped

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send a signal to one of our services (fault-injection tests)."""
        svc = self.kafka if name == "kafka" else self.redis
        pid = svc.pid()
        if pid is None:
            raise StackError(f"{name} is not running")
        os.kill(pid, sig)
        return pid

    def status(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for svc in (self.kafka, self.redis):
            out[svc.name] = {
                "pid": svc.pid(),
                "port": svc.port,
                "answering": port_open(svc.port) if svc.port else False,
                "log": str(svc.log_file),
            }
        return out

    def wipe(self) -> None:
        """Remove data, logs and pids (only when nothing of ours runs)."""
        if self.kafka.running() or self.redis.running():
            raise StackError("stack is running; run `skyfence stack down` first")
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        # reap if it is our child, so it does not linger as a zombie
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, IndexError):
        return False
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True



def _cluster_id() -> str:
    """A Kafka cluster id: 22 URL-safe base64 characters, like ``kafka-storage random-uuid``."""
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # one id in 64 starts with "-", which StorageTool's argument parser reads as an option
        # (Kafka's own Uuid.randomUuid() avoids such ids for the same reason)
        if not cid.startswith("-"):
            return cid


def _server_properties(port: int, controller_port: int, data: Path, partitions: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data}",
            f"num.partitions={partitions}",
            # single node: every internal topic must live with one replica
            "offsets.topic.replication.factor=1",
            # 8 instead of 50: each test's consumer group creates nothing new, and start-up is faster
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # no 3 s wait for more members: tests and demos start one worker at a time
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            # 10 MiB: lets the oversize-input tests reach our own size check rather than the broker's
            "message.max.bytes=10485760",
        ]
    ) + "\n"


def _sasl_properties(text: str, port: int, sec: StackSecurity, keystore: Path | None = None) -> str:
    """Turn the client listener into SASL_PLAINTEXT or SASL_SSL (SCRAM-SHA-512 and PLAIN), inter-broker too."""
    admin, admin_pw = sec.kafka_admin
    plain_users = {admin: admin_pw, **sec.kafka_users}
    users = " ".join(f'user_{n}="{p}"' for n, p in plain_users.items())
    proto = "SASL_SSL" if keystore is not None and sec.kafka_tls else "SASL_PLAINTEXT"
    replaced = {
        "listeners=": f"listeners={proto}://127.0.0.1:{port},",
        "advertised.listeners=": f"advertised.listeners={proto}://127.0.0.1:{port}",
        "listener.security.protocol.map=": f"listener.security.protocol.map={proto}:{proto},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=": f"inter.broker.listener.name={proto}",
    }
    out = []
    for line in text.splitlines():
        for key, new in replaced.items():
            if line.startswith(key):
                line = new + (line.split(",", 1)[1] if key == "listeners=" else "")
                break
        out.append(line)
    out += [
        "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        f"listener.name.{proto.lower()}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
        f'PlainLoginModule required username="{admin}" password="{admin_pw}" {users};',
        f"listener.name.{proto.lower()}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram."
        "ScramLoginModule required;",
    ]
    if proto == "SASL_SSL" and sec.kafka_tls and keystore is not None:
        out += [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={sec.kafka_tls[2]}",
        ]
    return "\n".join(out) + "\n"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _redis_ping(port: int, tls: tuple[str, str, str] | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw:
            s = raw
            if tls:
                s = ssl.create_default_context(cafile=tls[2]).wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(b"PING\r\n")
            # NOAUTH: it answers, it just wants an ACL user first (security mode)
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def _kafka_ready(svc: Service, port: int) -> bool:
    if not port_open(port):
        return False
    try:
        with open(svc.log_file, "rb") as f:
            f.seek(svc.log_offset)
            return b"Kafka Server started" in f.read()
    except OSError:
        return False
