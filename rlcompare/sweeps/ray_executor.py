"""The Ray executor: one Ray task per sweep task, results streamed back to the driver.

Connection follows Ray's conventions: an explicit ``address``, else ``RAY_ADDRESS``, else a
local cluster started with ``workers`` CPUs. Workers never touch the store or the driver's
files: the datasets a sweep learns from are put in Ray's object store once per sweep and
each task gets references to the ones it needs, so no shared filesystem is needed. A worker
that dies is retried by Ray (``max_retries``); after that the task's runs are recorded as
failed with the reason. ``resources`` pins tasks to nodes that offer a custom resource.

Starting a local cluster is retried once when Ray gives up on it: Ray 2.60 waits a fixed
30 s for the new node to register (``ray/_private/node.py``, not configurable), and the
raylet a fixed 15 s for its agents' port files (ray-project/ray#65983); on a loaded
machine the Python agents can take longer to start than that. (Where jsonschema finds
``rfc3987_syntax``, which Jupyter's ``jsonschema[format-nongpl]`` installs, every Ray Python
process builds its Lark grammars on import: 2.2 s of CPU for the dashboard agent's imports
instead of 0.6 s.)
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from rlcompare.errors import SpecError
from rlcompare.sweeps.tasks import failed_output

INSTALL_HINT = "executor 'ray' needs Ray: pip install 'rlcompare[ray]'"


def import_ray() -> Any:
    """Imports Ray or raises SpecError with the one line that says how to install it."""
    try:
        import ray
    except ImportError:
        raise SpecError(INSTALL_HINT) from None
    return ray


def connect(address: str | None, workers: int) -> Any:
    """Initialises Ray once per driver process (reusing an existing connection)."""
    ray = import_ray()
    if ray.is_initialized() and address and not _connected_to(ray, address):
        ray.shutdown()  # asked for another cluster than the one this process is attached to
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            start_local(workers)
    return ray


START_ATTEMPTS = 2


def start_local(num_cpus: int, *, attempts: int = START_ATTEMPTS, **options: Any) -> Any:
    """Starts a Ray cluster of this process's own and connects to it; returns ``ray.init``'s
    context. A start that Ray gave up on (see the module docstring) is retried, up to
    ``attempts`` starts in all, after ending the processes the failed start left behind.

    Args:
        num_cpus: CPUs the cluster offers.
        attempts: Starts tried in all.
        **options: More keywords for ``ray.init`` (``_temp_dir``: a folder of this
            cluster's own, where a test keeps it apart from any other on the machine).
    """
    ray = import_ray()
    for attempt in range(1, attempts + 1):
        before = _child_pids()
        try:
            # "local": a cluster of this machine's own, never one that `ray start` left
            # behind (plain ray.init() would try to join the last one started here).
            return ray.init(
                address="local",
                num_cpus=num_cpus,
                log_to_driver=False,
                include_dashboard=False,
                **options,
            )
        except Exception as error:
            if attempt == attempts or not is_startup_timeout(error):
                raise
            print(
                f"rlcompare: Ray's local cluster did not start in time ({error}); "
                f"retrying (start {attempt + 1} of {attempts})",
                file=sys.stderr,
            )
            ray.shutdown()
            end_processes(_child_pids() - before)
    raise AssertionError("unreachable")  # the last attempt returned or raised


def is_startup_timeout(error: BaseException) -> bool:
    """Whether ``error`` is Ray giving up on a node that was slow to start (worth a retry),
    not a wrong argument or a missing dependency (which a retry would only repeat)."""
    text = str(error)
    return isinstance(error, (TimeoutError, ConnectionError)) or (
        "timed out" in text and "startup" in text
    )


def _child_pids() -> set[int]:
    """Pids of this process's descendants (Ray's GCS, raylet and agents among them)."""
    import psutil  # a dependency of Ray

    return {child.pid for child in psutil.Process().children(recursive=True)}


def end_processes(pids: set[int]) -> None:
    """Kills ``pids`` (the processes a failed start left behind), each by its pid."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _connected_to(ray: Any, address: str) -> bool:
    """Whether this process's Ray connection is to the cluster at ``address``."""
    if address == "auto":
        return True
    try:
        current = ray.get_runtime_context().gcs_address
    except Exception:  # an old Ray without it: keep the connection, as before
        return True
    return same_endpoint(address.removeprefix("ray://"), current)


def _resolved(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def _local_addresses() -> set[str]:
    """This machine's IPv4 addresses (loopback included)."""
    import psutil  # a dependency of Ray

    found = {"127.0.0.1"}
    for addresses in psutil.net_if_addrs().values():
        found |= {a.address for a in addresses if a.family == socket.AF_INET}
    return found


def same_endpoint(address: str, other: str) -> bool:
    """Whether two ``host:port`` addresses name the same server: the same port, and hosts
    that resolve to the same IP or both to this machine (Ray reports its node IP, a user
    may give 127.0.0.1 or a hostname; a mismatch reconnected at every sweep, a new job with
    cold workers each time)."""
    host, _, port = address.rpartition(":")
    other_host, _, other_port = other.rpartition(":")
    if port != other_port:
        return False
    ips = {_resolved(host), _resolved(other_host)}
    return len(ips) == 1 or ips <= _local_addresses()


def _check_resources(resources: Any) -> None:
    """Refuses a ``resources`` option that is not a mapping of name -> positive amount."""
    if resources is None:
        return
    if not isinstance(resources, Mapping) or not all(
        isinstance(name, str)
        and not isinstance(amount, bool)
        and isinstance(amount, (int, float))
        and amount > 0
        for name, amount in resources.items()
    ):
        raise SpecError(
            f"resources = {resources!r} is invalid; valid: a mapping of custom resource name "
            '-> positive amount, e.g. {"far": 1}'
        )


def run_on_ray(
    tasks: list[tuple[Any, bytes]],
    execute: Callable[..., Any],
    *,
    workers: int,
    address: str | None = None,
    max_retries: int = 2,
    cpus_per_task: float = 1,
    resources: Mapping[str, float] | None = None,
    datasets: Mapping[str, bytes] | None = None,
    needs: Callable[[Any], Sequence[str]] | None = None,
) -> Iterator[Any]:
    """Yields ``execute(specs, definitions, dataset_ids, *dataset_bytes)`` for every packed
    task, in completion order.

    Args:
        tasks: ``(specs, packed definitions)`` pairs.
        execute: The function each Ray task runs.
        workers: CPUs of a local cluster started here (when no address is given).
        address: Ray cluster address (default: ``RAY_ADDRESS``, else a local cluster).
        max_retries: Times Ray retries a task whose worker died.
        cpus_per_task: CPUs each task reserves.
        resources: Custom resources each task reserves (``{"gpu_node": 1}`` pins tasks to
            nodes started with ``--resources='{"gpu_node": ...}'``).
        datasets: ``content identity -> file bytes`` of every dataset of the sweep; each is
            put in the object store once.
        needs: The identities of the datasets a task's specs learn from.
    """
    _check_resources(resources)
    ray = connect(address, workers)
    remote = ray.remote(
        num_cpus=cpus_per_task, max_retries=max_retries, resources=dict(resources or {})
    )(execute)
    refs = {identity: ray.put(blob) for identity, blob in (datasets or {}).items()}

    def submit(specs: Any, definitions: bytes) -> Any:
        ids = tuple(needs(specs)) if needs is not None else ()
        # Top-level ObjectRef arguments reach the worker as the bytes they point to, fetched
        # once per node from the object store.
        return remote.remote(specs, definitions, ids, *(refs[i] for i in ids))

    pending = {submit(specs, definitions): specs for specs, definitions in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            task = pending.pop(ref)
            try:
                yield ray.get(ref)
            except (
                ray.exceptions.WorkerCrashedError,
                ray.exceptions.NodeDiedError,
                ray.exceptions.RayTaskError,
            ) as error:
                yield failed_output(task, f"ray worker failed: {error}")
