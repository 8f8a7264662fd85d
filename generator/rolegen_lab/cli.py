"""CLI wiring of `rolegen lab` (the `lab` extra): up|build|status|down, the fault verbs (the sites', the
operator's: api-*, delete-pod, maintenance; the tunnel's WAN settings; the witness site's: witness-*), `drill` and
`chaos`; added to the root app by rolegen.cli."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rolegen import console
from rolegen.cli.options import DirOption, FormatOption, K8sBinOption, LabRootOption, TimeoutOption
from rolegen.console import Format
from rolegen_lab.drills.catalog import ALL

SCENARIO_NAMES = list(ALL)

lab_app = typer.Typer(
    help="Rehearse on a laptop: both sites with real Patroni, PostgreSQL, Helm and kubectl (needs the lab extra).",
    no_args_is_help=True,
)


@lab_app.command("up")
def lab_up(
    *, directory: DirOption = Path("environments"), root: LabRootOption = None, k8s_bin: K8sBinOption = None,
    witness: Annotated[bool, typer.Option("--witness", help="Also a witness site: a third control plane holding "
                                          "the witness Lease, with a route to it per site and the operator's.")]
    = False,
    automatic: Annotated[bool, typer.Option("--automatic", help="Automatic failover (implies --witness): the specs "
                                            "get an automatic witness block, the members the chart's witness guard, "
                                            "each site a `rolegen guard`.")] = False,
    sync: Annotated[bool, typer.Option("--sync", help="Automatic failover with witness replication sync (implies "
                                       "--automatic): the standby's release is renamed so member names differ.")]
    = False,
    guard_pods: Annotated[bool, typer.Option("--guard-pods", help="With --automatic: each site's standby guard runs "
                                             "as the chart's Deployment (its Pod, ServiceAccount and Role), not as "
                                             "a process.")] = False,
) -> None:
    """Bring up both sites from the environments and print how to reach them."""
    from rolegen_lab.control import client as lab_cmd

    console.show(console.run(lambda: lab_cmd.up(directory, root or lab_cmd.default_root(), k8s_bin=k8s_bin,
                                                witness=witness, automatic=automatic, sync=sync,
                                                guard_pods=guard_pods)))


@lab_app.command("build")
def lab_build(*, force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False) -> None:
    """Build the pinned kube-apiserver, kube-controller-manager and etcd from Go modules (needs Go)."""
    from rolegen_lab.control import client as lab_cmd

    console.show(console.run(lambda: lab_cmd.build(force, typer.echo)))


@lab_app.command("status")
def lab_status(*, root: LabRootOption = None, fmt: FormatOption = Format.pretty) -> None:
    """Members of both lab sites with their live roles."""
    from rolegen_lab.control import client as lab_cmd

    console.show(console.run(lambda: lab_cmd.status(root or lab_cmd.default_root())), fmt)


@lab_app.command("down")
def lab_down(*, root: LabRootOption = None) -> None:
    """Stop every lab process and remove the lab directory."""
    from rolegen_lab.control import client as lab_cmd

    console.show(console.run(lambda: lab_cmd.stop(root or lab_cmd.default_root())))


TargetArg = Annotated[str, typer.Argument(help="SITE or SITE/MEMBER (member name, ordinal, or `leader`).")]
SiteArg = Annotated[str, typer.Argument(help="Site (environment) name.")]
OptionalSiteArg = Annotated[
    str | None, typer.Argument(help="Only the tunnel towards this site (default: both directions).")
]


class Drop(StrEnum):
    """One direction of a link: what a one-way cut drops."""

    requests = "requests"
    answers = "answers"


def _drop_option(requests: str, answers: str) -> Any:
    return typer.Option("--drop", help=f"Cut one way only: `requests` ({requests}) or `answers` ({answers}); "
                        "default: both ways.")


def _fault(op: str, root: Path | None, target: str | None, **args: Any) -> None:
    from rolegen_lab.control.client import default_root
    from rolegen_lab.control.fault_verbs import fault

    console.show(console.run(lambda: fault(root or default_root(), op, target, **args)))


@lab_app.command("kill")
def lab_kill(
    target: TargetArg,
    *,
    no_restart: Annotated[bool, typer.Option("--no-restart", help="Keep it down until `rolegen lab start`.")] = False,
    root: LabRootOption = None,
) -> None:
    """SIGKILL Patroni and PostgreSQL of a member (or every member of a site); the lab restarts them at once,
    as a kubelet does, unless --no-restart."""
    _fault("kill", root, target, restart=not no_restart)


@lab_app.command("start")
def lab_start(target: TargetArg, *, root: LabRootOption = None) -> None:
    """Start members kept down by `kill --no-restart` (with their data)."""
    _fault("start", root, target)


@lab_app.command("pause")
def lab_pause(target: TargetArg, *, root: LabRootOption = None) -> None:
    """A hung Patroni: SIGSTOP it; its PostgreSQL keeps running (a primary keeps taking writes)."""
    _fault("pause", root, target)


@lab_app.command("resume")
def lab_resume(target: TargetArg, *, root: LabRootOption = None) -> None:
    """SIGCONT a paused Patroni."""
    _fault("resume", root, target)


@lab_app.command("cut")
def lab_cut(
    site: OptionalSiteArg = None,
    *,
    drop: Annotated[Drop | None, _drop_option("what the peer sends is lost; open streams still deliver to it",
                                              "what comes back to the peer is lost; its requests still arrive")]
    = None,
    root: LabRootOption = None,
) -> None:
    """Cut the TSC tunnel (APIs and local writes stay up): replication and the startup guard's peer check stop."""
    _fault("cut", root, site, direction=drop.value if drop else "both")


@lab_app.command("heal")
def lab_heal(site: OptionalSiteArg = None, *, root: LabRootOption = None) -> None:
    """Reconnect a cut tunnel."""
    _fault("heal", root, site)


@lab_app.command("lose")
def lab_lose(
    site: SiteArg,
    *,
    dark: Annotated[bool, typer.Option("--dark", help="The route to its API drops packets: requests time out "
                                       "(a data centre gone dark behind a VPN) instead of being refused.")] = False,
    root: LabRootOption = None,
) -> None:
    """Site loss: members killed and kept down, its API server stopped, tunnel and master cut."""
    _fault("lose", root, site, dark=dark)


@lab_app.command("restore")
def lab_restore(
    site: SiteArg,
    *,
    api_only: Annotated[bool, typer.Option("--api-only", help="Only the API server; members stay down.")] = False,
    tunnel_after: Annotated[float, typer.Option(
        "--tunnel-after", metavar="S", min=0,
        help="Keep the tunnel (both ways) cut for S seconds after the members start: a cold start before the "
             "tunnel.")] = 0,
    root: LabRootOption = None,
) -> None:
    """Bring a lost site back: its API server, then (unless --api-only) its members and links."""
    _fault("restore", root, site, api_only=api_only, tunnel_after=tunnel_after)


# -- the operator's side: their route to each API, their own hands ------------------------------------------------
@lab_app.command("api-cut")
def lab_api_cut(site: SiteArg, *, root: LabRootOption = None) -> None:
    """Refuse the operator's connections to a site's API (a VPN or API load balancer down); the site's own
    members and controllers reach their API as before."""
    _fault("api_cut", root, site)


@lab_app.command("api-slow")
def lab_api_slow(site: SiteArg, *, root: LabRootOption = None) -> None:
    """Accept the operator's connections to a site's API and never answer (past kubectl's request timeout)."""
    _fault("api_slow", root, site)


@lab_app.command("api-flaky")
def lab_api_flaky(
    site: SiteArg,
    *,
    rate: Annotated[float, typer.Option("--rate", min=0.01, max=1.0, help="Fraction of connections that fail.")] = 0.5,
    root: LabRootOption = None,
) -> None:
    """Fail a fraction of the operator's connections to a site's API (connection reset or HTTP 503)."""
    _fault("api_flaky", root, site, rate=rate)


@lab_app.command("api-heal")
def lab_api_heal(
    site: Annotated[str | None, typer.Argument(help="Only this site's API route (default: all).")] = None,
    *,
    root: LabRootOption = None,
) -> None:
    """The operator reaches the API again."""
    _fault("api_heal", root, site)


@lab_app.command("wan")
def lab_wan(
    site: Annotated[str | None, typer.Argument(help="Only the tunnel towards this site (default: both ways).")]
    = None,
    *,
    latency_ms: Annotated[float, typer.Option("--latency-ms", min=0, help="One-way added latency.")] = 0,
    jitter_ms: Annotated[float, typer.Option("--jitter-ms", min=0, help="+- around the latency.")] = 0,
    rate_mbit: Annotated[float, typer.Option("--rate-mbit", min=0, help="Bandwidth cap per direction (0: none).")]
    = 0,
    reset_every_s: Annotated[float, typer.Option(
        "--reset-every-s", min=0, help="Mean seconds between random resets of the tunnel's connections (0: none).")]
    = 0,
    root: LabRootOption = None,
) -> None:
    """Make the TSC tunnel behave like a WAN link (all zero: plain loopback again). Open tunnel connections are
    dropped once and reconnect under the new settings; `heal`/drills keep them."""
    _fault("wan", root, site, latency_ms=latency_ms, jitter_ms=jitter_ms, rate_mbit=rate_mbit,
           reset_every_s=reset_every_s)


@lab_app.command("delete-pod")
def lab_delete_pod(target: TargetArg, *, root: LabRootOption = None) -> None:
    """Force-delete member Pods (kubectl delete pod --force --grace-period=0): processes killed at once, the
    StatefulSet recreates the Pod (restartCount 0) on the same volume."""
    _fault("delete_pod", root, target)


@lab_app.command("maintenance")
def lab_maintenance(
    site: SiteArg,
    *,
    off: Annotated[bool, typer.Option("--off", help="End it (patronictl resume).")] = False,
    root: LabRootOption = None,
) -> None:
    """Patroni maintenance mode for a site, as `patronictl pause` sets it (`pause: true` in its DCS config)."""
    _fault("maintenance", root, site, on=not off)


# -- the witness site (`lab up --witness`) ------------------------------------------------------------------------
@lab_app.command("witness-cut")
def lab_witness_cut(
    site: Annotated[str, typer.Argument(help="Whose link: a site (its guard's route) or `operator`.")],
    *,
    drop: Annotated[Drop | None, _drop_option("nothing reaches the witness",
                                              "requests reach the witness and are applied, answers are lost")]
    = None,
    root: LabRootOption = None,
) -> None:
    """Cut a site's link to the witness (or the operator's); the other links keep working."""
    _fault("witness_cut", root, site, direction=drop.value if drop else "both")


@lab_app.command("witness-heal")
def lab_witness_heal(
    site: Annotated[str | None, typer.Argument(help="Only this link (a site or `operator`; default: all).")] = None,
    *,
    root: LabRootOption = None,
) -> None:
    """Links to the witness work again."""
    _fault("witness_heal", root, site)


@lab_app.command("witness-lose")
def lab_witness_lose(*, root: LabRootOption = None) -> None:
    """Witness loss: its API server and etcd stop; every route to it refuses."""
    _fault("witness_lose", root, None)


@lab_app.command("witness-restore")
def lab_witness_restore(*, root: LabRootOption = None) -> None:
    """The lost witness answers again, with its data."""
    _fault("witness_restore", root, None)


# -- automatic failover's guards (`lab up --automatic`) -------------------------------------------------------------
@lab_app.command("kill-guard")
def lab_kill_guard(target: TargetArg, *, root: LabRootOption = None) -> None:
    """SIGKILL a member's witness guard (default: the leader's), its container's first process: the rest of the
    container ends with it, and the lab restarts it, as a kubelet does."""
    _fault("kill_guard", root, target)


@lab_app.command("skew")
def lab_skew(
    site: SiteArg,
    seconds: Annotated[float, typer.Argument(help="Offset of its wall clock (negative: behind; 0: true again).")],
    *,
    root: LabRootOption = None,
) -> None:
    """Step the wall clock of a site's standby guard (needs libfaketime); its monotonic clock stays true."""
    _fault("skew", root, site, seconds=seconds)


@lab_app.command("drill")
def lab_drill(
    scenario: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCENARIO_NAMES)}.")],
    *,
    fmt: FormatOption = Format.pretty,
    timeout: TimeoutOption = 60,
    root: LabRootOption = None,
) -> None:
    """A game day on the running lab: workload, faults, the rolegen runs a user would make, heal, report.
    Exit 0 on PASS, 1 on FAIL."""
    from rolegen_lab.control import client as lab_cmd
    from rolegen_lab.drills import commands as drill_cmd

    progress = (lambda line: typer.echo(line, err=True)) if fmt is Format.pretty else (lambda _: None)
    report = console.run(lambda: drill_cmd.run(scenario, root or lab_cmd.default_root(), timeout, progress))
    console.show(report, fmt, ok=report.passed)


@lab_app.command("chaos")
def lab_chaos(
    *,
    schedules: Annotated[int, typer.Option("--schedules", help="How many seeded schedules (seed, seed+1, ...).",
                                           min=1)] = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="The first schedule's seed (default: the clock).")] = None,
    minutes: Annotated[float, typer.Option("--minutes", help="Length of each schedule's operations.", min=0.05)] = 1.0,
    replay: Annotated[Path | None, typer.Option("--replay", help="Run this saved schedule again (YAML or JSON).",
                                                exists=True, dir_okay=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Where failing schedules are saved.", file_okay=False)] = Path(),
    fmt: FormatOption = Format.pretty,
    timeout: TimeoutOption = 30,
    root: LabRootOption = None,
) -> None:
    """Random seeded schedules of lab faults and operator actions under a write workload; heal, recover with the
    documented commands, check the safety invariants. A failing schedule is saved for --replay. Exit 0: all pass."""
    from rolegen_lab.control import client as lab_cmd
    from rolegen_lab.drills.chaos import commands as chaos_cmd

    options = chaos_cmd.ChaosOptions(schedules, seed, minutes, replay, out, timeout)
    progress = (lambda line: typer.echo(line, err=True)) if fmt is Format.pretty else (lambda _: None)
    series = console.run(lambda: chaos_cmd.run(root or lab_cmd.default_root(), options, progress))
    console.show(series, fmt, ok=series.passed)
