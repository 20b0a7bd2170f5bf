"""Leader election on a coordination.k8s.io/v1 Lease: two replicas run, only the leader reconciles.

The electing is the official client's (``kubernetes.leaderelection``, client-go's algorithm: a candidate
takes the Lease when it is free or has not been renewed for ``lease_duration`` seconds; the leader renews
it every ``retry_period`` and gives up when it could not for ``renew_deadline``; every write is a replace
with the resourceVersion it read, so two candidates never both win). This module adds what that
library leaves open, each for a reason:

- **Release.** The library's elector runs until its lease is lost. ``release()`` stops its renewals and
  hands the Lease over (no holder, as client-go's ``ReleaseOnCancel``; ``leaseDurationSeconds: 1`` for
  client-go candidates), so on SIGTERM the standby takes over at its next retry instead of after the
  lease duration.
- **Losing is at once.** The library notices a lost lease only after ``renew_deadline`` of failed
  renewals; here, seeing another holder in the Lease is enough. Either way ``on_lost`` runs (the
  ``run`` command exits, as controller-runtime does, and the Deployment restarts it as a standby).
- **Bounded requests.** ``LeaseLock`` sends its requests without a timeout: one that hangs would hang the
  renew loop, which would then never notice that its lease ran out while the standby took it over.
  Here each request is bounded (half the renew deadline: a get and a replace fit in it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.server
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.leaderelection import electionconfig
from kubernetes.leaderelection.leaderelection import LeaderElection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from workload_operator.kube import replica_identity

logger = logging.getLogger(__name__)
LIBRARY_LOGGER = "leaderelection"  # kubernetes.leaderelection's: one INFO line per retry


@dataclasses.dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease is and its timing (controller-runtime's defaults: 15 s, 10 s, 2 s)."""
    namespace: str
    name: str = "workload-operator"
    identity: str = dataclasses.field(default_factory=replica_identity)
    lease_duration: int = 15  # whole seconds: the Lease's leaseDurationSeconds
    renew_deadline: float = 10
    retry_period: float = 2


class _LeaseApi:
    """CoordinationV1Api with a timeout on every call, and a warning for failures an election does not expect."""

    EXPECTED = {"read_namespaced_lease": 404, "create_namespaced_lease": 409, "replace_namespaced_lease": 409}

    def __init__(self, api: kubernetes.client.CoordinationV1Api, timeout: float) -> None:
        self.api, self.timeout = api, timeout
        self.warned: set[tuple[str, int]] = set()

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self.api, method)

        def bounded(*args: Any, **kwargs: Any) -> Any:
            try:
                return call(*args, _request_timeout=self.timeout, **kwargs)
            except ApiException as exc:
                if exc.status != self.EXPECTED.get(method) and (method, exc.status) not in self.warned:
                    self.warned.add((method, exc.status))  # once each: the library retries every period
                    hint = " (does the Lease's namespace exist?)" if (method, exc.status) == (
                        "create_namespaced_lease", 404) else ""
                    logger.warning("leader election: %s answered %s %s%s", method, exc.status, exc.reason, hint)
                raise
            except urllib3.exceptions.HTTPError as exc:  # a timeout or no connection: the library wants ApiException
                raise ApiException(status=0, reason=f"{type(exc).__name__}: {exc}") from exc
        return bounded


class _Election(LeaderElection):
    """The library's elector, stoppable (renewals end with ``release``) and quick to notice another holder."""

    def __init__(self, config: electionconfig.Config, elector: Elector) -> None:
        super().__init__(config)
        self.elector = elector

    def try_acquire_or_renew(self) -> bool:
        elector = self.elector
        with elector.guard:
            if elector.released:
                return False
            held = super().try_acquire_or_renew()
            holder = self.observed_record.holder_identity if self.observed_record else None
        elector.observed(holder)
        if not held and elector.leading.is_set() and holder not in (None, elector.settings.identity):
            elector.lose(f"the Lease is held by {holder} now")
        return held


class Elector:
    """Campaign for the Lease in a thread; ``leading`` is set once this candidate holds it.

    ``on_lost`` runs (in the election's thread) when the lease is lost while leading and not released.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, settings: LeaseSettings,
                 on_lost: Callable[[str], None]) -> None:
        self.settings, self.on_lost = settings, on_lost
        self.lock = LeaseLock(settings.name, settings.namespace, settings.identity)
        self.lock.api_instance = _LeaseApi(kubernetes.client.CoordinationV1Api(api_client), settings.renew_deadline / 2)
        self.leading = threading.Event()
        self.guard = threading.Lock()  # one Lease request at a time: a release never races a renewal
        self.released = False
        self.holder: str | None = None
        config = electionconfig.Config(self.lock, settings.lease_duration, settings.renew_deadline,
                                       settings.retry_period, onstarted_leading=self._started,
                                       onstopped_leading=lambda: self.lose("its renewals failed for the renew deadline"))
        self.thread = threading.Thread(target=self._run, args=(_Election(config, self),), name="leader-election",
                                       daemon=True)

    @property
    def where(self) -> str:
        return f"Lease {self.settings.namespace}/{self.settings.name}"

    def start(self) -> None:
        logger.info("%s: waiting to lead (%s)", self.settings.identity, self.where)
        self.thread.start()

    def _run(self, election: _Election) -> None:
        try:
            election.run()
        except Exception as exc:  # the thread would end silently, and a leader go on without renewing
            logger.exception("%s: leader election failed", self.settings.identity)
            if not self.released:
                self.on_lost(f"the election failed: {exc}")

    def observed(self, holder: str | None) -> None:
        if holder != self.holder and holder != self.settings.identity and not self.leading.is_set():
            logger.info("%s: the %s is held by %s", self.settings.identity, self.where, holder or "nobody")
        self.holder = holder

    def _started(self) -> None:
        logger.info("%s: leading: reconciling (%s)", self.settings.identity, self.where)
        self.leading.set()

    def lose(self, why: str) -> None:
        if self.leading.is_set() and not self.released:
            logger.error("%s: leader election lost: %s", self.settings.identity, why)
            self.on_lost(why)

    def release(self) -> bool:
        """Stop renewing and, if this candidate holds the Lease, hand it over; True if it was handed over."""
        with self.guard:  # waits out a renewal in flight; none starts after this
            self.released = True  # the Lease's holder says whether it is ours (``leading`` is set a moment later)
            api, name, namespace = self.lock.api_instance, self.settings.name, self.settings.namespace
            try:
                lease = api.read_namespaced_lease(name, namespace)
                if lease.spec is None or lease.spec.holder_identity != self.settings.identity:
                    return False
                now = datetime.datetime.now(datetime.UTC)
                now = now.replace(microsecond=now.microsecond or 1)  # a MicroTime: the API server wants 6 digits
                lease.spec.holder_identity = None
                lease.spec.lease_duration_seconds = 1
                lease.spec.acquire_time = lease.spec.renew_time = now
                api.replace_namespaced_lease(name, namespace, lease)
            except ApiException as exc:
                if exc.status == 404:  # no Lease: nothing held
                    return False
                logger.warning("%s: could not release the %s (%s %s); it expires in %ss", self.settings.identity,
                               self.where, exc.status, exc.reason, self.settings.lease_duration)
                return False
        logger.info("%s: released the %s", self.settings.identity, self.where)
        return True


class _Health(http.server.BaseHTTPRequestHandler):
    path_served = "/healthz"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        code = 200 if urllib.parse.urlsplit(self.path).path == self.path_served else 404
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"standby\n" if code == 200 else b"not found\n")

    def log_message(self, *_: Any) -> None:  # the kubelet asks every few seconds: no log line each time
        pass


@contextlib.contextmanager
def standby_health(url: str | None) -> Iterator[None]:
    """Answer the liveness endpoint while waiting to lead (kopf serves it once it runs): a standby is alive."""
    if url is None:
        yield
        return
    parts = urllib.parse.urlsplit(url)
    handler = type("Health", (_Health,), {"path_served": parts.path or "/"})
    server = http.server.ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), handler)
    thread = threading.Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()  # the port is kopf's next
