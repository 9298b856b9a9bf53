"""What the node agent does next with one pod's containers, and the status to write: a pure
function from the pod and what the runtime and the prober report (`ContainersView`) to a
`Plan` (kubelet's computePodActions + generateAPIPodStatus + getPhase, reduced).

No clock, no I/O: `view.now` is the time. The agent executes the actions, records the
events, writes the status, and calls `plan` again after every container exit, probe result
change, and at `recheck` — which is `now` whenever the plan starts a container, as the
status written with it still shows the container not running.

Rules (upstream's):
- Init containers run one at a time in spec order, each to exit 0 before the next starts;
  as in kubelet, the latest one that has run decides what happens next. Sidecars (init
  containers with restartPolicy Always) count as done once running and started (startup
  probe True, when they have one), and are always restarted. A failed init container is
  restarted unless the pod's policy is Never (then the pod Fails). App containers start, all
  at once, only after the init containers are done; once any app container has run, the pod
  stays initialized (regular init containers never run again).
- An exited container restarts per policy (Always; OnFailure when the exit code is not 0;
  Never: not at all), after a back-off counted from its finished_at: none for the first
  restart, then 10 s doubling to 300 s (kubelet's MaxContainerBackOff). A run that lasted
  at least BACKOFF_RESET seconds restarts at once (kubelet's back-off entry expires).
  While waiting: CrashLoopBackOff.
- A running container whose liveness (or startup) probe result is False is killed; it is
  restarted per policy when it has exited. While its startup probe has not said True, its
  liveness and readiness are not consulted and it is neither started nor ready.
- A container whose postStart hook is still running (`view.starting`) shows as waiting
  ContainerCreating, is neither started nor ready, and its probes are not consulted
  (kubelet's sync waits for the hook before it writes the container as running).
- Once every app container has exited for good (policy Never/OnFailure), sidecars are
  stopped, last first, and nothing starts again. A pod already written Succeeded/Failed
  keeps that phase and has whatever still runs stopped. A pod being deleted starts
  nothing (its containers are the deletion path's to stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from k1s.client.events import rfc3339

from .eviction import Verdict, deadline_at, deadline_verdict, standing_verdict
from .podplan import parse_time
from .podstatus import _base, _conditions, container_id, image_id, normalize_image

BACKOFF_INITIAL = 10.0      # kubelet's backOffPeriod
BACKOFF_MAX = 300.0         # kubelet's MaxContainerBackOff
BACKOFF_RESET = 2 * BACKOFF_MAX   # flowcontrol.Backoff forgets an entry this old
DEFAULT_GRACE = 30          # the pod's terminationGracePeriodSeconds default
TERMINAL = ("Succeeded", "Failed")


# -- what the agent tells us -------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One container's current run, as the runtime reports it."""
    restart: int           # 0 for the first run
    started_at: float | None
    exit_code: int | None  # None: running
    reason: str = ""       # when exited: Completed / Error / OOMKilled / StartError / ...
    message: str = ""
    finished_at: float | None = None


@dataclass(frozen=True)
class ContainersView:
    now: float                              # epoch seconds
    host_ip: str
    pod_ip: str
    runs: dict[str, Run]                    # containers started at least once (init + app)
    last: dict[str, Run]                    # the previous (terminated) run, for lastState
    waiting: dict[str, tuple[str, str]]     # name -> (reason, message): cannot start (image)
    probes: dict[tuple[str, str], bool]     # (container, "readiness"|"liveness"|"startup") ->
    #                                         thresholded result; absent = no result yet
    killing: frozenset[str] = frozenset()   # containers being killed right now
    starting: frozenset[str] = frozenset()  # running, but their postStart hook has not ended
    verdict: Verdict | None = None          # the node fails the pod (an eviction)


# -- what we tell the agent --------------------------------------------------------------------
@dataclass(frozen=True)
class StartContainer:
    name: str              # start (or restart) this container now


@dataclass(frozen=True)
class KillContainer:
    name: str
    grace: int
    message: str


@dataclass(frozen=True)
class ContainerEvent:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    actions: list[StartContainer | KillContainer | ContainerEvent]
    status: dict
    recheck: float | None  # call plan again at this time (a back-off ends, a start happened)


# -- back-off ----------------------------------------------------------------------------------
def backoff_seconds(restart: int) -> float:
    """The delay before restarting a run whose restart count is `restart`: none after the
    first run, then 10 s, 20 s, 40 s ... capped at 300 s."""
    if restart <= 0:
        return 0.0
    if restart > 10:            # 10 * 2**9 is past the cap already; no huge powers
        return BACKOFF_MAX
    return min(BACKOFF_INITIAL * 2 ** (restart - 1), BACKOFF_MAX)


def restart_delay(run: Run) -> float:
    """Back-off for restarting this exited run; a long run resets it (kubelet's entry,
    updated when the run started, has expired by the time it exits)."""
    if run.started_at is not None and run.finished_at is not None and \
            run.finished_at - run.started_at >= BACKOFF_RESET:
        return 0.0
    return backoff_seconds(run.restart)


def restart_at(run: Run) -> float:
    end = run.finished_at if run.finished_at is not None else (run.started_at or 0.0)
    return end + restart_delay(run)


def go_duration(seconds: float) -> str:
    """time.Duration's String() for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


# -- spec helpers ------------------------------------------------------------------------------
def _spec(pod: dict) -> dict:
    return pod.get("spec") or {}


def _is_sidecar(c: dict) -> bool:
    return c.get("restartPolicy") == "Always"


def _policy(pod: dict) -> str:
    return _spec(pod).get("restartPolicy") or "Always"


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


def _pod_ref(pod: dict) -> str:
    """kubelet's format.Pod: name_namespace(uid)."""
    md = pod.get("metadata") or {}
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def grace_period(pod: dict, probe: dict | None) -> int:
    if probe and probe.get("terminationGracePeriodSeconds") is not None:
        return int(probe["terminationGracePeriodSeconds"])
    g = _spec(pod).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE if g is None else int(g)


def _run_id(pod: dict, name: str, run: Run) -> str:
    # every run is a new container upstream; the first keeps podstatus's id for the name
    return container_id(pod, name if run.restart == 0 else f"{name}/{run.restart}")


# -- one container's probe-derived facts -------------------------------------------------------
def _started(c: dict, run: Run | None, view: ContainersView) -> bool:
    if run is None or run.exit_code is not None or c["name"] in view.starting:
        return False
    if c.get("startupProbe") is not None:
        return view.probes.get((c["name"], "startup")) is True
    return True


def _ready(c: dict, run: Run | None, view: ContainersView) -> bool:
    if not _started(c, run, view) or c["name"] in view.killing:
        return False
    if c.get("readinessProbe") is not None:
        return view.probes.get((c["name"], "readiness")) is True
    return True


# -- the planner -------------------------------------------------------------------------------
@dataclass
class _Builder:
    """The decisions of one plan call, collected as it walks the containers."""
    pod: dict
    view: ContainersView
    actions: list = field(default_factory=list)
    waits: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> waiting state
    recheck: float | None = None

    def _later(self, at: float) -> None:
        self.recheck = at if self.recheck is None else min(self.recheck, at)

    def start(self, c: dict, run: Run | None) -> bool:
        """Start (or restart) c unless its image is missing or it is backing off. Returns
        whether it starts now."""
        name, view = c["name"], self.view
        if name in view.waiting:
            self.waits[name] = view.waiting[name]
            return False
        if run is not None:
            at = restart_at(run)
            if view.now < at:
                pod = _pod_ref(self.pod)
                self.waits[name] = (
                    "CrashLoopBackOff",
                    f"back-off {go_duration(restart_delay(run))} restarting failed "
                    f"container={name} pod={pod}")
                self.actions.append(ContainerEvent(
                    "Warning", "BackOff",
                    f"Back-off restarting failed container {name} in pod {pod}"))
                self._later(at)
                return False
        image = c.get("image") or ""
        self.actions += [
            StartContainer(name),
            ContainerEvent("Normal", "Pulled",
                           f'Container image "{image}" already present on machine'),
            ContainerEvent("Normal", "Created", f"Created container: {name}"),
            ContainerEvent("Normal", "Started", f"Started container {name}")]
        self._later(view.now)     # look again once it runs: its status changes
        return True

    def kill(self, name: str, grace: int, message: str) -> None:
        if name in self.view.killing:
            return
        self.actions += [KillContainer(name, grace, message),
                         ContainerEvent("Normal", "Killing", message)]


def _check_probes(b: _Builder, c: dict, run: Run | None, sidecar: bool) -> None:
    """Kill a running container whose startup or liveness probe failed."""
    if run is None or run.exit_code is not None or c["name"] in b.view.starting:
        return                          # (probes start once its postStart hook ended)
    name, probes = c["name"], b.view.probes
    what = probe = None
    if c.get("startupProbe") is not None and probes.get((name, "startup")) is not True:
        if probes.get((name, "startup")) is False:
            what, probe = "startup", c["startupProbe"]
    elif c.get("livenessProbe") is not None and probes.get((name, "liveness")) is False:
        what, probe = "liveness", c["livenessProbe"]
    if what is None:
        return
    if sidecar:
        message = f"Init container {name} failed {what} probe"
    else:
        message = f"Container {name} failed {what} probe"
        if _policy(b.pod) != "Never":
            message += ", will be restarted"
    b.kill(name, grace_period(b.pod, probe), message)


def _keep_sidecar(b: _Builder, c: dict) -> None:
    """A sidecar whose turn has passed: kept running, restarted whenever it exited."""
    run = b.view.runs.get(c["name"])
    if run is None or run.exit_code is not None:
        b.start(c, run)
    else:
        _check_probes(b, c, run, sidecar=True)


def _walk_init(b: _Builder, inits: list[dict], initialized: bool) -> bool:
    """kubelet's computeInitContainerActions: the latest init container (in spec order) that
    has run decides — start the next one, wait for it, or run it again; the ones before it
    have had their turn (regular ones completed, sidecars are kept running). Once an app
    container has run, only the sidecars matter. A failure under policy Never is handled
    before. Returns whether initialization is complete."""
    runs = b.view.runs
    latest = -1 if initialized else max(
        (i for i, c in enumerate(inits) if c["name"] in runs), default=-1)
    for c in (inits if initialized else inits[:max(latest, 0)]):
        if _is_sidecar(c):
            _keep_sidecar(b, c)
    if initialized or not inits:
        return True
    if latest < 0:
        b.start(inits[0], None)
        return False
    c = inits[latest]
    run = runs[c["name"]]
    if _is_sidecar(c):
        _check_probes(b, c, run, sidecar=True)
        if run.exit_code is not None:
            b.start(c, run)              # sidecars are always restarted
            return False
        if not _started(c, run, b.view):
            return False                 # wait for its startup probe
    elif run.exit_code is None:
        return False                     # still running: wait for it
    elif run.exit_code != 0:
        b.start(c, run)                  # failed: run it again (after its back-off)
        return False
    if latest == len(inits) - 1:
        return True
    b.start(inits[latest + 1], None)
    return False


def _finished(pod: dict, apps: list[dict], runs: dict[str, Run]) -> bool:
    """Every app container has exited and none is to be restarted."""
    policy = _policy(pod)
    if policy == "Always" or not apps:
        return False
    for c in apps:
        run = runs.get(c["name"])
        if run is None or run.exit_code is None or should_restart(policy, run.exit_code):
            return False
    return True


def plan(pod: dict, view: ContainersView) -> Plan:
    spec = _spec(pod)
    inits = list(spec.get("initContainers") or ())
    apps = list(spec.get("containers") or ())
    runs = view.runs
    old_phase = (pod.get("status") or {}).get("phase")
    b = _Builder(pod, view)

    # a finished pod (by now, or already written as such) never starts anything again; nor
    # does one whose init container failed under policy Never
    initialized = any(c["name"] in runs for c in apps)
    init_failed = _policy(pod) == "Never" and not initialized and any(
        not _is_sidecar(c) and c["name"] in runs and runs[c["name"]].exit_code not in (None, 0)
        for c in inits)
    # the node may fail the pod itself (an eviction, its active deadline): it is finished
    started = (pod.get("status") or {}).get("startTime")
    start_time = parse_time(started) if started else view.now
    verdict = view.verdict or standing_verdict(pod) or \
        deadline_verdict(pod, start_time, view.now)
    finished = old_phase in TERMINAL or init_failed or verdict is not None or \
        _finished(pod, apps, runs)
    # a pod being deleted is stopped by the agent's deletion path: nothing (re)starts
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if verdict is None and not deleting and old_phase not in TERMINAL:
        at = deadline_at(pod, start_time)
        if at is not None:
            b._later(at)                 # look again when the active deadline passes
    if not finished and not deleting:
        init_done = _walk_init(b, inits, initialized)
        if init_done or initialized:
            policy = _policy(pod)
            for c in apps:
                run = runs.get(c["name"])
                if run is None:
                    b.start(c, None)
                elif run.exit_code is None:
                    _check_probes(b, c, run, sidecar=False)
                elif should_restart(policy, run.exit_code):
                    b.start(c, run)
    if finished and not deleting:
        # kubelet kills the pod: app containers (only a pod written terminal by someone else
        # can still have some), then the sidecars, last first
        grace = verdict.grace if verdict is not None and verdict.grace is not None \
            else grace_period(pod, None)
        for c in (*apps, *reversed(inits)):
            run = runs.get(c["name"])
            if run is not None and run.exit_code is None:
                b.kill(c["name"], grace, f"Stopping container {c['name']}")
        for c in apps:     # an image still missing shows as such
            if c["name"] not in runs and c["name"] in view.waiting:
                b.waits[c["name"]] = view.waiting[c["name"]]

    status = _status(pod, view, b.waits, inits, apps)
    if old_phase in TERMINAL:
        status["phase"] = old_phase          # no way back out of a terminal phase
        status["conditions"] = _pod_conditions(pod, view, status, inits, apps)
    if verdict is not None and not deleting:
        _fail(pod, view, status, verdict, b, inits, apps)
    return Plan(b.actions, status, b.recheck)


def _fail(pod: dict, view: ContainersView, status: dict, verdict: Verdict, b: _Builder,
          inits: list[dict], apps: list[dict]) -> None:
    """The node failed the pod: its reason and message now, the Failed phase once nothing of
    it runs (kubelet writes a terminal phase only after the pod's containers stopped, so the
    agent's teardown of a finished pod never cuts a grace period short)."""
    old = pod.get("status") or {}
    if old.get("reason") != verdict.reason:
        b.actions.append(ContainerEvent(verdict.event_type, verdict.reason, verdict.message))
    status["reason"], status["message"] = verdict.reason, verdict.message
    if not any(r.exit_code is None for r in view.runs.values()):
        status["phase"] = "Failed"
    status["conditions"] = _pod_conditions(pod, view, status, inits, apps)
    if verdict.disruption and not any(c.get("type") == "DisruptionTarget"
                                      for c in status["conditions"]):
        status["conditions"].append({
            "type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
            "message": verdict.message, "lastTransitionTime": rfc3339(view.now)})


# -- status ------------------------------------------------------------------------------------
def _terminated(pod: dict, name: str, run: Run, now: float) -> dict:
    t = {"exitCode": run.exit_code, "reason": run.reason or ("Completed" if run.exit_code == 0
                                                             else "Error")}
    if run.message:
        t["message"] = run.message
    t["startedAt"] = rfc3339(run.started_at if run.started_at is not None else now)
    t["finishedAt"] = rfc3339(run.finished_at if run.finished_at is not None else now)
    t["containerID"] = _run_id(pod, name, run)
    return {"terminated": t}


def _container_status(pod: dict, c: dict, view: ContainersView, wait: tuple[str, str] | None,
                      default_reason: str, init: bool = False) -> dict:
    name = c["name"]
    image = c.get("image") or ""
    run = view.runs.get(name)
    last = view.last.get(name)
    out = {"name": name, "image": normalize_image(image), "imageID": "", "lastState": {},
           "ready": False, "restartCount": 0, "started": False}
    if run is None:
        reason, message = wait or (default_reason, "")
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message
                                                         else {})}}
        return out
    out["imageID"] = image_id(image)
    out["containerID"] = _run_id(pod, name, run)
    out["restartCount"] = run.restart
    if last is not None and last.exit_code is not None:
        out["lastState"] = _terminated(pod, name, last, view.now)
    if run.exit_code is None and name in view.starting:
        # kubelet's sync waits for the postStart hook before it writes the container as
        # running: until then it is still being created
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
    elif run.exit_code is None:
        out["state"] = {"running": {"startedAt": rfc3339(
            run.started_at if run.started_at is not None else view.now)}}
        out["started"] = _started(c, run, view)
        # a regular init container is ready only once it completed (kubelet's prober manager)
        out["ready"] = _ready(c, run, view) and (not init or _is_sidecar(c))
    elif wait is not None:
        # waiting to be restarted: the run that ended becomes lastState (kubelet's reasonCache)
        out["lastState"] = _terminated(pod, name, run, view.now)
        reason, message = wait
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message
                                                         else {})}}
    else:
        out["state"] = _terminated(pod, name, run, view.now)
        out["ready"] = init and not _is_sidecar(c) and run.exit_code == 0
    return out


def _status(pod: dict, view: ContainersView, waits: dict[str, tuple[str, str]],
            inits: list[dict], apps: list[dict]) -> dict:
    now = rfc3339(view.now)
    status = _base(pod, view.host_ip, now)
    pod_ip = view.host_ip if _spec(pod).get("hostNetwork") else view.pod_ip
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    # kubelet: with init containers, everything not yet run waits PodInitializing
    default = "PodInitializing" if inits else "ContainerCreating"
    if inits:
        status["initContainerStatuses"] = [
            _container_status(pod, c, view, waits.get(c["name"]), default, init=True)
            for c in inits]
    status["containerStatuses"] = [
        _container_status(pod, c, view, waits.get(c["name"]), default) for c in apps]
    status["phase"] = phase(pod, status)
    status["conditions"] = _pod_conditions(pod, view, status, inits, apps)
    return status


def _state(cs: dict) -> str:
    return next(iter(cs.get("state") or {"waiting": {}}))


def _has_last_termination(cs: dict) -> bool:
    return "terminated" in (cs.get("lastState") or {})


def phase(pod: dict, status: dict) -> str:
    """kubelet's getPhase over the statuses just built (the pod is never 'terminal' here:
    the agent does not tear pods down early)."""
    spec = _spec(pod)
    policy = _policy(pod)
    by_name = {cs["name"]: cs for cs in (status.get("initContainerStatuses") or [])}
    apps_by_name = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
    pending_init = failed_init = pending_sidecars = 0
    running = waiting = stopped = succeeded = 0
    for c in spec.get("initContainers") or ():
        cs = by_name.get(c["name"])
        st = _state(cs) if cs else "waiting"
        if _is_sidecar(c):
            if st == "running":
                running += 1
                pending_sidecars += not cs.get("started")
            elif st == "waiting" and not (cs and _has_last_termination(cs)):
                pending_sidecars += 1
                waiting += 1
            continue
        if st == "running":
            pending_init += 1
        elif st == "terminated":
            failed_init += cs["state"]["terminated"]["exitCode"] != 0
        elif _has_last_termination(cs or {}):
            failed_init += cs["lastState"]["terminated"]["exitCode"] != 0
        else:
            pending_init += 1
    for c in spec.get("containers") or ():
        cs = apps_by_name.get(c["name"])
        st = _state(cs) if cs else "waiting"
        if st == "running":
            running += 1
        elif st == "terminated":
            stopped += 1
            succeeded += cs["state"]["terminated"]["exitCode"] == 0
        elif cs and _has_last_termination(cs):
            stopped += 1
        else:
            waiting += 1
    if failed_init and policy == "Never":
        return "Failed"
    initialized = any(_state(cs) == "running" for cs in apps_by_name.values())
    if pending_init or (pending_sidecars and not initialized) or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _names(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _pod_conditions(pod: dict, view: ContainersView, status: dict, inits: list[dict],
                    apps: list[dict]) -> list[dict]:
    now = rfc3339(view.now)
    ph = status["phase"]
    init_cs = {cs["name"]: cs for cs in status.get("initContainerStatuses") or ()}
    app_cs = {cs["name"]: cs for cs in status.get("containerStatuses") or ()}
    wanted: dict[str, tuple[str, str | None, str | None]] = {}

    # the sandbox goes once a finished pod's containers have all stopped
    any_running = any(_state(cs) == "running" for cs in (*init_cs.values(), *app_cs.values()))
    if ph in TERMINAL and not any_running:
        wanted["PodReadyToStartContainers"] = ("False", None, None)

    # Initialized
    incomplete = []
    for c in inits:
        cs = init_cs[c["name"]]
        if _is_sidecar(c):
            if not cs.get("started"):
                incomplete.append(c["name"])
        elif _state(cs) != "terminated" or cs["state"]["terminated"]["exitCode"] != 0:
            incomplete.append(c["name"])
    app_started = any(_state(cs) in ("running", "terminated") for cs in app_cs.values())
    if ph == "Succeeded":
        wanted["Initialized"] = ("True", "PodCompleted", None)
    elif incomplete and not app_started:
        wanted["Initialized"] = ("False", "ContainersNotInitialized",
                                 f"containers with incomplete status: {_names(incomplete)}")

    # ContainersReady, then Ready (the same unless readiness gates hold it back)
    if ph in TERMINAL:
        reason = "PodCompleted" if ph == "Succeeded" else "PodFailed"
        cready = ("False", reason, None)
    else:
        unready = [c["name"] for c in inits if _is_sidecar(c) and not init_cs[c["name"]]["ready"]]
        unready += [c["name"] for c in apps if not app_cs[c["name"]]["ready"]]
        cready = ("False", "ContainersNotReady",
                  f"containers with unready status: {_names(unready)}") if unready \
            else ("True", None, None)
    wanted["ContainersReady"] = cready
    wanted["Ready"] = cready if cready[0] != "True" else _gates(pod)
    return _conditions(pod, wanted, now)


def _gates(pod: dict) -> tuple[str, str | None, str | None]:
    """Ready once containers are: every readiness gate's condition must be True too."""
    have = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or ()}
    problems = []
    for gate in _spec(pod).get("readinessGates") or ():
        t = gate.get("conditionType", "")
        c = have.get(t)
        if c is None:
            problems.append(f'corresponding condition of pod readiness gate "{t}" does not exist.')
        elif c.get("status") != "True":
            problems.append(f'the status of pod readiness gate "{t}" is not "True", '
                            f'but {c.get("status")}')
    if problems:
        return ("False", "ReadinessGatesNotReady", ", ".join(problems))
    return ("True", None, None)
