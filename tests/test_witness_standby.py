"""The standby site's witness guard (rolegen.witness.standby, rolegen.commands.guard): its loop on a fake clock
with fake reads, its promise server over real HTTP, and the CLI's refusal without automatic mode."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import spec_data
from typer.testing import CliRunner

from rolegen.cli import app
from rolegen.commands import guard as guard_cmd
from rolegen.errors import RolegenError
from rolegen.witness.lease import WitnessView
from rolegen.witness.rules import Timers
from rolegen.witness.standby import Ports, SiteView, StandbyLoop

TIMERS = Timers(fence_after=30, margin=10, renew_every=5, request_timeout=4)  # promote_after 40


@dataclass
class Fake:
    now: float = 0.0
    lease: WitnessView = field(default_factory=lambda: WitnessView("gold", "1", lsn=1000))
    witness_up: bool = True
    site: SiteView = field(default_factory=lambda: SiteView(False, 990))
    site_error: bool = False
    failover_errors: int = 0
    taken: list[str] = field(default_factory=list)
    promotions: int = 0
    log: list[str] = field(default_factory=list)

    def read_lease(self) -> WitnessView:
        if not self.witness_up:
            raise RolegenError("witness: connection refused")
        return self.lease

    def read_site(self) -> SiteView:
        if self.site_error:
            raise RolegenError("golddr: connection refused")
        return self.site

    def take(self, seen: WitnessView) -> WitnessView:
        if not self.witness_up:
            raise RolegenError("witness: connection refused")
        if seen.version != self.lease.version:
            raise RolegenError("Conflict: the lease changed")
        self.lease = WitnessView("golddr", str(int(self.lease.version or 0) + 1), self.lease.lsn)
        self.taken.append(seen.version or "")
        return self.lease

    def promote(self) -> None:
        if self.failover_errors:
            self.failover_errors -= 1
            raise RolegenError("golddr has no running standby leader to promote", hint="rolegen status")
        self.promotions += 1

    def loop(self, lag_limit: int | None = 100) -> StandbyLoop:
        ports = Ports(self.read_lease, self.read_site, self.take, self.promote)
        return StandbyLoop("golddr", TIMERS, lag_limit, ports, self.log.append, now=lambda: self.now)

    def renew(self) -> None:
        self.lease = WitnessView("gold", str(int(self.lease.version or 0) + 1), self.lease.lsn)


def run_until(fake: Fake, loop: StandbyLoop, until: float, every: float = 1.0) -> list[str]:
    seen = []
    while fake.now <= until:
        seen.append(loop.step())
        fake.now += every
    return seen


def test_a_silent_leader_is_replaced_after_promote_after_and_not_a_step_before() -> None:
    fake = Fake()
    loop = fake.loop()
    assert set(run_until(fake, loop, 39)) == {"wait"} and fake.promotions == 0
    assert loop.step() == "promote" and fake.promotions == 1 and fake.taken == ["1"]
    assert loop.step() == "lead" and fake.promotions == 1  # the lease is golddr's now: nothing more to do
    assert any("decision=promote" in line for line in fake.log)


def test_each_renewal_seen_and_each_promise_granted_start_the_quiet_over() -> None:
    fake = Fake()
    loop = fake.loop()
    run_until(fake, loop, 30)
    fake.renew()
    assert set(run_until(fake, loop, 69)) == {"wait"}  # 31 + 40 > 69
    assert loop.grant() is True  # the leader asked through the DR link at 70
    assert set(run_until(fake, loop, 109)) == {"wait"} and fake.promotions == 0
    run_until(fake, loop, 111)
    assert fake.promotions == 1
    assert loop.grant() is False  # promoting (and promoted): no promise any more


def test_a_standby_that_still_receives_or_cannot_be_read_never_promotes() -> None:
    fake = Fake(site=SiteView(True, 1000))
    loop = fake.loop()
    assert "promote" not in run_until(fake, loop, 60)
    fake.site, fake.site_error = SiteView(False, 1000), True  # a failed read is not "it stopped receiving"
    assert "promote" not in run_until(fake, loop, 120) and fake.promotions == 0
    assert any("counted as still receiving" in line for line in fake.log)


def test_the_lag_limit_against_the_leaders_last_published_position() -> None:
    fake = Fake(site=SiteView(False, 800))  # 200 bytes behind, limit 100
    loop = fake.loop()
    assert run_until(fake, loop, 45)[-1] == "refuse-lag" and fake.promotions == 0
    unknown = Fake(lease=WitnessView("gold", "1", lsn=None))  # never published: what was acknowledged is unknown
    assert run_until(unknown, unknown.loop(), 45)[-1] == "refuse-lag"
    # Synchronous: nothing acknowledged is missing here while the Lease says so; once it said unsynchronized
    # (the leader's guard dropped the peer), the failover stays manual.
    sync = Fake(site=SiteView(False, 800), lease=WitnessView("gold", "1", lsn=1000, synchronous=True))
    run_until(sync, sync.loop(lag_limit=None), 45)
    assert sync.promotions == 1
    unsync = Fake(site=SiteView(False, 1000), lease=WitnessView("gold", "1", lsn=1000, synchronous=False))
    assert run_until(unsync, unsync.loop(lag_limit=None), 45)[-1] == "refuse-lag" and unsync.promotions == 0


def test_a_witness_out_of_reach_shows_no_change_but_its_lease_cannot_be_taken() -> None:
    """Cut from the witness, the standby sees no renewal: the quiet goes on. The leader may still renew there,
    so the promotion needs the Lease taken at the version last seen: refused, nothing promoted, promises again."""
    fake = Fake()
    loop = fake.loop()
    assert loop.step() == "wait"  # sees version 1 and the position the leader published
    fake.witness_up = False
    steps = run_until(fake, loop, 60)
    assert "wait" in steps and fake.promotions == 0 and not fake.taken
    assert any("lease not taken" in line for line in fake.log)
    assert loop.grant() is True
    fake.witness_up = True
    fake.renew()  # it renewed meanwhile: the version last seen is stale
    fake.now = 200  # the grant at 61 and the new version, seen now, start the quiet over
    assert loop.step() == "wait" and fake.promotions == 0


def test_a_renewal_between_the_decision_and_the_takeover_stops_the_promotion() -> None:
    fake = Fake()
    real_take = fake.take

    def renewed_first(seen: WitnessView) -> WitnessView:
        fake.renew()  # the leader's renewal lands first: the takeover's version is stale
        return real_take(seen)

    loop = StandbyLoop("golddr", TIMERS, 100, Ports(fake.read_lease, fake.read_site, renewed_first, fake.promote),
                       fake.log.append, now=lambda: fake.now)
    run_until(fake, loop, 39)
    assert loop.step() == "wait" and fake.promotions == 0 and not fake.taken
    assert loop.grant() is True  # nothing was promoted: promises again


def test_a_failover_that_stopped_is_resumed_by_the_guard_holding_the_lease() -> None:
    fake = Fake(failover_errors=2)
    loop = fake.loop()
    run_until(fake, loop, 39)
    assert loop.step() == "error" and fake.taken == ["1"]
    assert loop.step() == "error"
    assert loop.step() == "promote" and fake.promotions == 1 and fake.taken == ["1"]  # taken once
    assert any("hint: rolegen status" in line for line in fake.log)


def test_the_lease_taken_stays_renewed_while_the_failover_steps_run_and_not_after() -> None:
    """Found by the bench (auto-guard-killed, rounds 1, 4 and 6): golddr's steps (fence gold first, catch up,
    promote) took 13 s after the take; nothing renewed the Lease meanwhile, so gold's guard saw it quiet for
    promote_after, took it back, and golddr's promotion was refused by its pre_promote: no site led for a
    minute. The guard that took the Lease keeps it renewed until its promoted leader's own guard does."""
    fake = Fake()
    renewals: list[str] = []
    quick = Timers(fence_after=0.3, margin=0.1, renew_every=0.05, request_timeout=0.04)

    def renew(seen: WitnessView) -> WitnessView:
        assert seen.holder == "golddr" and seen.version == fake.lease.version  # at the version read, never blind
        fake.lease = WitnessView("golddr", str(int(seen.version or 0) + 1), seen.lsn)
        renewals.append(fake.lease.version or "")
        return fake.lease

    def slow_steps() -> None:  # the failover steps, long enough for several renewals
        deadline = time.monotonic() + 5
        while len(renewals) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        fake.promotions += 1

    loop = StandbyLoop("golddr", quick, 100, Ports(fake.read_lease, fake.read_site, fake.take, slow_steps,
                                                   renew_lease=renew), fake.log.append, now=lambda: fake.now)
    assert loop.step() == "wait"  # the first look is the first change seen
    fake.now = 1.0
    assert loop.step() == "promote" and fake.promotions == 1
    assert len(renewals) >= 3 and fake.lease.holder == "golddr" and fake.lease.lsn == 1000  # the leader's LSN kept
    after = len(renewals)
    time.sleep(0.3)  # six renewal periods: the promoted leader's guard renews from here
    assert len(renewals) == after


def test_a_guard_stops_renewing_a_lease_another_site_holds() -> None:
    """A role change that gave the Lease to the other site while the failover steps kept failing: the keeper
    never takes it back (a renewal is refused on another holder; only a takeover moves the Lease)."""
    fake = Fake(failover_errors=1000)
    quick = Timers(fence_after=0.3, margin=0.1, renew_every=0.05, request_timeout=0.04)
    renewals: list[str] = []

    def renew(seen: WitnessView) -> WitnessView:
        renewals.append(seen.version or "")
        return seen

    loop = StandbyLoop("golddr", quick, 100, Ports(fake.read_lease, fake.read_site, fake.take, fake.promote,
                                                   renew_lease=renew), fake.log.append, now=lambda: fake.now)
    assert loop.step() == "wait"
    fake.now = 1.0
    assert loop.step() == "error" and fake.lease.holder == "golddr"
    time.sleep(0.2)
    assert renewals  # renewed while the failover is retried
    fake.lease = WitnessView("gold", "99", 1000)  # a human's failback moved it
    time.sleep(0.2)
    count = len(renewals)
    time.sleep(0.2)
    assert len(renewals) == count and fake.lease.holder == "gold"
    assert any("stops renewing the witness lease: the witness lease is gold's" in line for line in fake.log)


def test_the_promise_server_answers_over_http_and_stops_on_request() -> None:
    fake = Fake()
    loop = fake.loop()
    stop, ready = threading.Event(), threading.Event()
    where: list[tuple[str, int]] = []
    result: list[guard_cmd.GuardResult] = []

    def serve() -> None:
        result.append(guard_cmd.run(loop, ("127.0.0.1", 0), every=0.05, stop=stop,
                                    ready=lambda at: (where.append(at), ready.set())))

    thread = threading.Thread(target=serve)
    thread.start()
    assert ready.wait(10)
    host, port = where[0]
    request = urllib.request.Request(f"http://{host}:{port}/promise", data=b'{"site": "gold"}', method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.loads(answer.read()) == {"granted": True}
    with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200
    stop.set()
    thread.join(10)
    assert result and result[0].site == "golddr" and not result[0].promoted


def test_the_cli_refuses_a_site_without_automatic_mode(tmp_path: Path) -> None:
    import yaml

    for env in ("gold", "golddr"):
        (tmp_path / f"{env}.yaml").write_text(yaml.safe_dump(spec_data(env)))
    result = CliRunner().invoke(app, ["guard", "--env", "golddr", "-d", str(tmp_path)])
    assert result.exit_code == 1
    assert "witness.mode is not automatic" in result.output and "Traceback" not in result.output


def test_after_a_failback_gives_the_lease_back_the_guard_watches_afresh_and_grants_promises_again() -> None:
    """Found by the partition matrix on the lab: after its failover and the failback, the guard still refused
    every promise (it was `promoting`), so the new leader, cut from the witness, fenced itself."""
    fake = Fake()
    loop = fake.loop()
    run_until(fake, loop, 40)
    assert fake.promotions == 1 and loop.grant() is False
    fake.lease = WitnessView("gold", "9", lsn=5000)  # the failback moved it back to gold
    fake.now += 1
    assert loop.step() == "wait"
    assert loop.grant() is True and any("decision=watch" in line for line in fake.log)
    run_until(fake, loop, fake.now + 11)  # a whole promote_after again before it may promote
    assert fake.promotions == 1


def test_a_guard_finding_the_lease_its_sites_while_the_site_is_a_standby_finishes_the_promotion() -> None:
    """Its predecessor took the Lease and died before the failover's end (a Pod rescheduled), or a role change
    stopped after moving it: the old leader fences on the Lease, so maybe no site leads. The same rules as a
    takeover decide (a whole promote_after without a sign of the old leader, nothing received, the lag), the
    Lease is written back at the version read (anyone's change since stops it), then the failover steps run."""
    fake = Fake(lease=WitnessView("golddr", "7", lsn=1000), site=SiteView(False, 990, standby=True))
    loop = fake.loop()
    assert set(run_until(fake, loop, 39)) == {"wait"}  # promote_after of quiet first
    loop.grant()  # the old leader asks for a promise: alive, the quiet starts over
    assert set(run_until(fake, loop, 78)) == {"wait"} and fake.promotions == 0
    assert run_until(fake, loop, 80)[-1] == "promote"
    assert fake.promotions == 1 and fake.taken == ["7"]  # written back at the version read, as a takeover's
    assert any("the witness lease is already golddr's while it is a standby" in line for line in fake.log)
    assert run_until(fake, loop, 85)[-1] == "lead" and fake.promotions == 1


def test_a_guard_whose_site_leads_with_the_lease_only_watches_and_reads_its_site_once_a_renewal() -> None:
    fake = Fake(lease=WitnessView("golddr", "7", lsn=1000), site=SiteView(False, None, standby=False))
    reads: list[float] = []
    read = fake.read_site

    def counted() -> SiteView:
        reads.append(fake.now)
        return read()

    loop = StandbyLoop("golddr", TIMERS, 100, Ports(fake.read_lease, counted, fake.take, fake.promote),
                       fake.log.append, now=lambda: fake.now)
    assert set(run_until(fake, loop, 100)) == {"lead"} and fake.promotions == 0
    assert reads == [float(t) for t in range(0, 101, 5)]  # renew_every apart


def test_a_stranded_standby_that_still_receives_is_not_promoted() -> None:
    fake = Fake(lease=WitnessView("golddr", "7", lsn=1000), site=SiteView(True, 990, standby=True))
    loop = fake.loop()
    assert "promote" not in run_until(fake, loop, 100) and fake.promotions == 0


def _stranded(declared: str, **fake_args: object) -> tuple[Fake, StandbyLoop]:
    fake = Fake(lease=WitnessView("gold", "7", lsn=1000), site=SiteView(False, 990, standby=True), **fake_args)
    ports = Ports(fake.read_lease, fake.read_site, fake.take, fake.promote, declared=lambda: declared)
    return fake, StandbyLoop("gold", TIMERS, 100, ports, fake.log.append, now=lambda: fake.now)


def test_a_declared_leader_its_own_guard_fenced_is_never_reopened_by_its_standby_guard() -> None:
    """gold, cut from both partners, was fenced by its leader guard: a standby holding its own old Lease. Its
    standby guard leaves it so (a human reopens it), whatever the quiet."""
    fake, loop = _stranded("leader")
    assert set(run_until(fake, loop, 200)) == {"lead"} and fake.promotions == 0 and fake.taken == []


def test_a_lease_seen_before_the_witness_went_out_of_reach_resumes_nothing() -> None:
    """A stale view is no evidence: the other site may have taken the Lease since (the lab found a guard that
    resumed on the Lease it last saw, while the peer's guard was failing over)."""
    fake, loop = _stranded("standby-leader")
    loop.step()
    fake.witness_up = False
    assert "promote" not in run_until(fake, loop, 200) and fake.promotions == 0 and fake.taken == []


def test_a_lease_changed_between_the_look_and_the_write_back_resumes_nothing() -> None:
    fake, loop = _stranded("standby-leader")
    take = fake.take

    def taken_meanwhile(seen: WitnessView) -> WitnessView:
        fake.lease = WitnessView("golddr", "8", lsn=1000)  # the peer's guard took it a moment before
        return take(seen)

    loop.ports = Ports(fake.read_lease, fake.read_site, taken_meanwhile, fake.promote,
                       declared=lambda: "standby-leader")
    decisions = run_until(fake, loop, 45)
    assert "promote" not in decisions and fake.promotions == 0
    assert any("lease not confirmed: Conflict" in line for line in fake.log)


def test_a_witness_out_of_reach_is_said_once_per_outage_and_the_decision_once() -> None:
    fake = Fake(lease=WitnessView("golddr", "7", lsn=1000), site=SiteView(False, None, standby=False))
    loop = fake.loop()
    run_until(fake, loop, 2)
    fake.witness_up = False
    run_until(fake, loop, 10)
    fake.witness_up = True
    run_until(fake, loop, 12)
    fake.witness_up = False
    run_until(fake, loop, 20)
    assert sum("witness unreadable" in line for line in fake.log) == 2  # two outages
    assert sum("decision=lead" in line for line in fake.log) == 1
