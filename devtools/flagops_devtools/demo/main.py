"""`python -m flagops_devtools.demo [--fast] [--keep]`: the whole flagops story on a laptop.

Starts a local control plane (etcd, kube-apiserver, kube-controller-manager),
Prometheus, two local Calendar servers, the flagops relay, the sample meal-plan
app (following the relay's stream, serving the meal-plan web page), the operator
and the probe stand-in; publishes the default flags; rolls calendar sync out to
FULL (headless chromium watches the page for the first step); then lets a second
rollout meet an error spike and roll back. It prints how long each stage change
took to reach the app. Everything it starts is stopped at the end, on an error
and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from flagops.api import crdgen
from flagops.api.resources import GROUP, VERSION
from flagops.flags import FeatureFlags
from flagops_devtools.demo import scenario
from flagops_devtools.demo.browser import BrowserUnavailable
from flagops_devtools.demo.mount import ConfigMapMount
from flagops_devtools.demo.page_timing import PageTiming, time_page_change
from flagops_devtools.demo.parts import AppRelay, CalendarServerProcess, MealPlanAppProcess
from flagops_devtools.demo.reach import parse_time, wait_reach
from flagops_devtools.demo.runs import RolloutRun
from flagops_devtools.demo.users import POPULATION_SIZE, SAMPLE_USERS, flag_table, population
from flagops_devtools.demo.view import LiveView, snapshot
from flagops_devtools.demo.web import WebAppNotBuilt, check_built
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.kubelet_standin import ProbeKubeletStandIn
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.process import free_port
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.relay import RelayProcess
from flagops_devtools.testing.wait import wait_for

REFRESH_SECONDS = 0.5
DEFAULT_FLAG_COUNT = 6


class DemoFailed(RuntimeError):
    pass


class Demo:
    def __init__(
        self, fast: bool, keep: bool, out: TextIO = sys.stdout, web_dir: Path | None = None
    ) -> None:
        self.fast = fast
        self.keep = keep
        self.web_dir = web_dir
        self.out = out
        self.timings = scenario.FAST if fast else scenario.NORMAL
        self.view = LiveView(out)
        self.began = time.monotonic()
        self.work_dir = Path(tempfile.mkdtemp(prefix="flagops-demo-"))
        self.stack = contextlib.ExitStack()
        self.pids: dict[str, int] = {}
        self.users = population(POPULATION_SIZE)
        self.runs: dict[str, RolloutRun] = {}
        self.stopping = threading.Event()
        self.ok = False
        # Set as the parts start.
        self.plane: ControlPlane | None = None
        self._custom: Any = None
        self._core: Any = None
        self._flags: FeatureFlags | None = None
        self._mount_dir: Path | None = None
        self._shopping: CalendarServerProcess | None = None
        self._app: MealPlanAppProcess | None = None
        self.page_timing: PageTiming | None = None

    # -- output -------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.view.note(text)

    def step(self, text: str) -> None:
        self.say(f"\n==> [{time.monotonic() - self.began:5.1f}s] {text}")

    # -- start-up -----------------------------------------------------------------------

    def start(self) -> None:
        # The one part built outside Python (make web): checked before anything starts.
        try:
            web_dir = check_built(self.web_dir)
        except WebAppNotBuilt as exc:
            raise DemoFailed(str(exc)) from None
        self.step("starting the local control plane (etcd, kube-apiserver, controller-manager)")
        plane = ControlPlane(controller_manager=True)
        plane.start()
        self.stack.callback(plane.stop)
        self.plane = plane
        for name, pid in plane.pids().items():
            if pid is not None:
                self.pids[name] = pid
        api = plane.api_client()
        self.stack.callback(api.close)
        from kubernetes import client

        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self.say(f"    {plane.server} up in {plane.startup_seconds['total']:.1f}s")

        # Rendered by the generator that writes crds/, so an installed demo needs no checkout.
        self.step("applying the CRDs (rendered by flagops.api.crdgen, as `make crds` writes crds/)")
        crds = self.work_dir / "crds.yaml"
        crds.write_text("".join(crdgen.render().values()))
        plane.kubectl("apply", "--server-side", "-f", str(crds))
        plane.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/featureflags.flagops.dev",
            "crd/rollouts.flagops.dev",
            "--timeout=60s",
        )
        plane.create_namespace(scenario.NAMESPACE)

        self.step("starting two local Calendar servers (meal calendar, household calendar)")
        calendar = CalendarServerProcess("calendar-meals", self.work_dir).start()
        self.stack.callback(calendar.stop)
        shopping = CalendarServerProcess("calendar-household", self.work_dir).start()
        self.stack.callback(shopping.stop)
        self._shopping = shopping
        for part in (calendar, shopping):
            self.pids[part.name] = part.process.pid or 0
            self.say(f"    {part.name}: {part.url}")

        mount_dir = self.work_dir / "etc-flagops"
        mount = ConfigMapMount(api, scenario.NAMESPACE, "feature-flags", mount_dir).start()
        self.stack.callback(mount.stop)
        self._mount_dir = mount_dir

        self.step("starting the flagops relay (development mode: no tokens, this namespace)")
        relay = RelayProcess(
            plane.kubeconfig,
            [scenario.NAMESPACE],
            extra_args=["--dev-serve-namespace-without-tokens", scenario.NAMESPACE],
            log_dir=self.work_dir,
        ).start()
        self.stack.callback(relay.stop)
        self.pids["flagops-relay"] = relay.process.pid or 0
        self.say(f"    {relay.url} (OFREP, /v1/flags.json and their event streams)")

        self.step("starting the meal-plan app (flags from the relay's stream + integrations)")
        app_relay = AppRelay(
            url=f"{relay.url}/namespaces/{scenario.NAMESPACE}",
            root=relay.url,
            namespace=scenario.NAMESPACE,
        )
        app = MealPlanAppProcess(
            self.work_dir,
            mount_dir,
            calendar,
            shopping,
            relay=app_relay,
            web_port=free_port(),
            web_dir=web_dir,
        ).start()
        self.stack.callback(app.stop)
        self._app = app
        self.pids["meal-plan-app"] = app.process.pid or 0
        self.say(
            f"    {len(self.users)} users, flags from {app_relay.url} (fallback {mount_dir}),"
            f" metrics {app.target}"
        )
        self.say(f"    meal-plan web page: {app.web_url}?user=ana&cohort=internal")

        self.step("starting Prometheus (Debian's prometheus, scraping the app every second)")
        prometheus = PrometheusServer([app.target], scrape_interval="1s", job="meal-plan-app")
        prometheus.start()
        self.stack.callback(prometheus.close)
        self.pids["prometheus"] = prometheus._process.pid or 0
        prometheus.wait_for_scrape()
        self.say(f"    {prometheus.url}")

        self.step("starting the flagops operator and the probe stand-in")
        operator = OperatorProcess(
            plane.kubeconfig,
            [scenario.NAMESPACE],
            prometheus_address=prometheus.url,
            log_dir=self.work_dir,
            # Non-secret settings for probe Jobs: where this "Google" is.
            extra_args=["--probe-env", f"FLAGOPS_CALENDAR_API_ENDPOINT={calendar.url}"],
        ).start()
        self.stack.callback(operator.stop)
        self.pids["flagops-operator"] = operator.process.pid or 0
        standin = ProbeKubeletStandIn(
            api_client=api,
            namespace=scenario.NAMESPACE,
        )
        standin.start()
        self.stack.callback(standin.stop)
        self.stack.callback(self.stopping.set)
        wait_for(standin.ready.is_set, timeout=30, message="probe stand-in did not list pods")
        self.say(f"    operator log {operator.log_path}")
        self.say("demo pids: " + json.dumps(self.pids, sort_keys=True))
        self.say(
            f"    watch along from another shell: export KUBECONFIG={plane.kubeconfig};"
            f" kubectl get rollouts -n {scenario.NAMESPACE} -w"
            "  (make demo KEEP=1 keeps the cluster afterwards)"
        )

        # The probe's credentials: what a platform team stores as a Secret; never printed.
        plane.kubectl(
            "create",
            "secret",
            "generic",
            scenario.PROBE_SECRET,
            "-n",
            scenario.NAMESPACE,
            f"--from-file=credentials.json={calendar.credentials_file}",
        )

    # -- the story ----------------------------------------------------------------------

    def publish_default_flags(self) -> None:
        assert self.plane is not None and self._mount_dir is not None
        self.step("applying the six default flags (kubectl apply -k manifests/flags)")
        # Package data (demo/flags links to manifests/flags), so an installed demo needs no
        # checkout for them.
        with resources.as_file(resources.files("flagops_devtools.demo") / "flags") as folder:
            self.plane.kubectl("apply", "-n", scenario.NAMESPACE, "-k", str(folder))
        mounted = self._mount_dir / "flags.json"
        wait_for(mounted.exists, timeout=60, message="feature-flags ConfigMap not published")
        # The demo reads the flags with the SDK too, exactly as the app does.
        assert self._app is not None and self._app.relay is not None
        flags = self._flags = FeatureFlags.from_relay(
            self._app.relay.url, fallback_path=self._mount_dir
        )
        self.stack.callback(flags.close)

        def published() -> dict[str, Any] | None:
            config_map = self._core.read_namespaced_config_map("feature-flags", scenario.NAMESPACE)
            document: dict[str, Any] = json.loads(config_map.data["flags.json"])
            ready = len(document["flags"]) == DEFAULT_FLAG_COUNT
            return document if ready and flags.revision == document["revision"] else None

        document = wait_for(published, timeout=60, message="default flags not published")
        self.say("published ConfigMap feature-flags, key flags.json (as the app reads it):")
        self.say(f'  {{"schema": {document["schema"]}, "revision": "{document["revision"]}",')
        self.say('   "flags": {')
        entries = sorted(document["flags"].items())
        for index, (key, state) in enumerate(entries):
            comma = "," if index < len(entries) - 1 else ""
            self.say(f'     "{key}": {json.dumps(state, sort_keys=True)}{comma}')
        self.say("  }}")
        self.say("\nwhich sample user sees which flag:")
        self.say(flag_table(document["flags"], SAMPLE_USERS))

    def _rollout(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self._custom.get_namespaced_custom_object(
            GROUP, VERSION, scenario.NAMESPACE, "rollouts", name
        )
        return obj

    def _seeing(self, key: str) -> int:
        assert self._flags is not None
        flags = self._flags
        return sum(flags.is_enabled(key, user_id=u.user_id, cohort=u.cohort) for u in self.users)

    def _new_events(self, run: RolloutRun, seen: set[str]) -> None:
        events = self._core.list_namespaced_event(
            scenario.NAMESPACE, field_selector=f"involvedObject.name={run.name}"
        ).items
        # Timestamps have one-second resolution; the resourceVersion orders writes exactly.
        for event in sorted(events, key=lambda e: int(e.metadata.resource_version or 0)):
            key = f"{event.metadata.uid}/{event.count}"
            if key in seen:
                continue
            seen.add(key)
            line = f"event {event.type:<7} {event.reason:<14} {event.message}"
            run.events.append(line)
            self.say(f"  {line}")

    def watch(
        self,
        run: RolloutRun,
        flag_key: str,
        done: Callable[[dict[str, Any]], bool],
        deadline: float,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        audience: int | None = None,
    ) -> dict[str, Any]:
        """Show the Rollout until `done` says so and, with `audience`, until that many
        users see the flag through the mounted file; DemoFailed at the deadline."""
        seen: set[str] = set()
        end = time.monotonic() + deadline
        rollout: dict[str, Any] = {}
        while True:
            rollout = self._rollout(run.name)
            status = rollout.get("status") or {}
            stage = status.get("stage")
            if stage and stage not in run.stage_seen:
                run.stage_seen[stage] = time.monotonic()
            if stage and status.get("stageStartedAt"):
                run.decided[stage] = parse_time(status["stageStartedAt"])
            self._new_events(run, seen)
            seeing = self._seeing(flag_key)
            self.view.update(snapshot(rollout, seeing, len(self.users)))
            if on_update is not None:
                on_update(rollout)
            if done(status):
                run.ended = run.ended or time.monotonic()
                if audience is None or seeing == audience:
                    break
            if time.monotonic() >= end:
                run.final = status
                raise DemoFailed(
                    f"rollout {run.name} did not finish within {deadline:.0f}s: "
                    f"stage {status.get('stage')}, phase {status.get('phase')}, "
                    f"{status.get('message')}"
                )
            self.stopping.wait(REFRESH_SECONDS)
        self.view.close()
        run.final = rollout.get("status") or {}
        self._report_reach(run, flag_key)
        return rollout

    def _report_reach(self, run: RolloutRun, flag_key: str) -> None:
        """How long each stage decision took to reach the app through the relay."""
        assert self._app is not None
        run.reach = wait_reach(flag_key, run.decided, self._app.arrivals)
        self.say(f"  time from the operator's decision to the app (relay stream, {flag_key}):")
        rolled_back = run.final.get("phase") == "RolledBack"
        for item in run.reach:
            last = item is run.reach[-1]
            self.say(f"    {item.line(' (rollback)' if rolled_back and last else '')}")

    def apply(self, body: dict[str, Any]) -> None:
        assert self.plane is not None
        self.plane.kubectl("apply", "-n", scenario.NAMESPACE, "-f", "-", input=json.dumps(body))

    def roll_out_calendar_sync(self) -> None:
        body = scenario.calendar_rollout(self.timings)
        spec = body["spec"]
        self.step(
            f"rolling calendar_sync out: Rollout {scenario.CALENDAR_ROLLOUT} "
            f"(stageDuration {spec['stageDuration']}, analysis every "
            f"{spec['analysis']['interval']}, threshold 5%, health probe every "
            f"{spec['healthProbe']['every']})"
        )
        run = self.runs.setdefault(scenario.CALENDAR_ROLLOUT, RolloutRun(scenario.CALENDAR_ROLLOUT))
        run.started = time.monotonic()
        self.apply_watched_in_browser(body)
        self.watch(
            run,
            "calendar_sync",
            lambda s: s.get("phase") == "Completed" and s.get("stage") == "FULL",
            self.timings.calendar_deadline,
            audience=len(self.users),
        )
        self.say(f"calendar_sync reached FULL in {run.seconds:.0f}s")

    def apply_watched_in_browser(self, body: dict[str, Any]) -> None:
        """Apply the calendar Rollout while headless chromium shows the page to an internal
        user, and print how long its first step (INTERNAL) took to show on each path."""
        assert self._app is not None
        self.say("  opening the meal-plan page for ana (internal) in headless chromium")

        def decided() -> tuple[str, float] | None:
            status = self._rollout(scenario.CALENDAR_ROLLOUT).get("status") or {}
            if status.get("stage") and status.get("stageStartedAt"):
                return str(status["stage"]), parse_time(status["stageStartedAt"])
            return None

        try:
            timing = time_page_change(
                self._app.web_url, "ana", "internal", lambda: self.apply(body), decided, 60
            )
        except (BrowserUnavailable, TimeoutError, RuntimeError) as exc:
            raise DemoFailed(f"the browser step failed: {exc}") from exc
        self.page_timing = timing
        for line in timing.lines():
            self.say(line)

    def roll_out_shopping_list_sync(self) -> None:
        assert self._shopping is not None
        shopping = self._shopping
        body = scenario.shopping_rollout(self.timings)
        self.step(
            f"rolling shopping_list_sync out: Rollout {scenario.SHOPPING_ROLLOUT} "
            "(rollbackOnError: true); at BETA its backend will start failing"
        )
        run = self.runs.setdefault(scenario.SHOPPING_ROLLOUT, RolloutRun(scenario.SHOPPING_ROLLOUT))
        run.started = time.monotonic()
        self.apply(body)
        spiked: list[float] = []

        def spike_at_beta(rollout: dict[str, Any]) -> None:
            if spiked or (rollout.get("status") or {}).get("stage") != "BETA":
                return
            shopping.inject_errors("events.get", self.timings.spike_faults)
            spiked.append(time.monotonic())
            self.say(
                f"  !! injected an error spike: the household calendar answers 503 to the next "
                f"{self.timings.spike_faults} event reads"
            )

        self.watch(
            run,
            scenario.SHOPPING_FLAG_KEY,
            lambda s: s.get("phase") == "RolledBack",
            self.timings.shopping_deadline,
            on_update=spike_at_beta,
            audience=0,
        )
        after = run.ended - spiked[0] if spiked and run.ended else float("nan")
        self.say(
            f"shopping_list_sync rolled back {after:.0f}s after the spike: "
            f"{run.final.get('message')}"
        )

    # -- the end ------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        total = time.monotonic() - self.began
        self.step("summary")
        result: dict[str, Any] = {"total_seconds": round(total, 1), "rollouts": {}}
        for run in self.runs.values():
            for line in run.summary_lines():
                self.say(line)
            result["rollouts"][run.name] = run.result()
        if self.page_timing is not None:
            result["browser_ms"] = {
                path: round(seconds * 1000) for path, seconds in self.page_timing.seconds.items()
            }
        self.say(f"  whole demo so far: {total:.0f}s; logs in {self.work_dir}")
        self.say("demo result: " + json.dumps(result, sort_keys=True))
        return result

    def hold(self) -> None:
        """--keep: leave everything running for kubectl until Ctrl-C."""
        assert self.plane is not None
        bin_dir = Path(sys.executable).parent
        self.step("keeping the cluster running; in another terminal:")
        self.say(f"  export KUBECONFIG={self.plane.kubeconfig}")
        self.say(f"  export PATH={bin_dir}:$PATH   # kubectl-flagops")
        self.say(f"  kubectl get rollouts -n {scenario.NAMESPACE} -w")
        self.say(f"  kubectl flagops status -n {scenario.NAMESPACE}")
        self.say(f"  kubectl flagops status {scenario.CALENDAR_ROLLOUT} -n {scenario.NAMESPACE}")
        self.say("Ctrl-C stops everything.")
        while not self.stopping.wait(1.0):
            pass

    def stop(self) -> None:
        self.stopping.set()
        self.stack.close()
        if self.ok:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def run(self) -> int:
        try:
            self.start()
            self.publish_default_flags()
            self.roll_out_calendar_sync()
            self.roll_out_shopping_list_sync()
            result = self.summary()
            rollouts = result["rollouts"]
            self.ok = (
                rollouts[scenario.CALENDAR_ROLLOUT]["stage"] == "FULL"
                and rollouts[scenario.SHOPPING_ROLLOUT]["phase"] == "RolledBack"
                and all(r["reach_within_promise"] for r in rollouts.values())
            )
            if self.keep:
                self.hold()
            return 0 if self.ok else 1
        except DemoFailed as exc:
            self.say(f"\ndemo FAILED: {exc}")
            self.summary()
            self.say(f"logs kept in {self.work_dir}")
            return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flagops_devtools.demo", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="short stage durations (tests)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the cluster running afterwards until Ctrl-C"
    )
    parser.add_argument(
        "--web-dir",
        type=Path,
        help="the built meal-plan page (index.html, style.css, dist/app.js); default: the"
        " checkout's examples/mealplan-web, built by `make web`",
    )
    args = parser.parse_args(argv)
    # SIGTERM ends the demo the way Ctrl-C does: through the clean-up below. SIGINT is set
    # explicitly: a shell starting the demo in the background would have it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(fast=args.fast, keep=args.keep, web_dir=args.web_dir)
    code = 130
    try:
        code = demo.run()
    except KeyboardInterrupt:
        demo.say("\ninterrupted: stopping everything")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        demo.say("stopped everything the demo started")
        sys.stdout.flush()
    return code
