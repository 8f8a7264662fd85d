"""`rolegen switchover|failover|failback|reseed`: thin entry points over rolegen.procedures, each run holding the
role-change lease (rolegen.cluster.lease) on both sites,
taken after the operator's answer (never held through a prompt).
A failover whose old site's API does not answer leases the target only and writes nothing to the old site until
it has taken that site's lease too."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rolegen.cluster.client_errors import RERUN_HINT, ClusterError
from rolegen.errors import RolegenError
from rolegen.procedures import failback, failover, reseed, switchover
from rolegen.procedures.base import Log, Pair, load_pair
from rolegen.procedures.failback import FailbackResult
from rolegen.procedures.failback_bytes import Prediction
from rolegen.procedures.failover import FailoverResult
from rolegen.procedures.journal import Journal
from rolegen.procedures.repair import Method
from rolegen.procedures.reseed import ReseedResult
from rolegen.procedures.switchover import SwitchoverResult
from rolegen.results import text_lines

Outcome = SwitchoverResult | FailoverResult | FailbackResult | ReseedResult
T = TypeVar("T", SwitchoverResult, FailoverResult, FailbackResult, ReseedResult)
OLD_SITE_REQUEST_TIMEOUT = 2.0  # seconds: the old site's requests in the standby guard's failover


@dataclass(frozen=True)
class RoleOptions:
    to: str
    dry_run: bool = False
    kubeconfig: Path | None = None
    timeout: float = 120
    force: bool = False  # take over an expired lease
    accept_data_loss: bool = False  # failover: promote although the target has not replayed what the old site holds
    old_site_down: bool = False  # failover: the operator fenced/powered off the old site by other means
    evidence_timeout: float | None = None  # failover: how long its waits for evidence last (the witness guard's)


@dataclass(frozen=True)
class RoleChangeResult:
    """A role change: the numbered runbook (`--dry-run`), or what the procedure did and its timings."""

    verb: str  # switchover | failover | failback | reseed
    to: str
    runbook: str | None = None  # --dry-run
    outcome: Outcome | None = None
    prediction: Prediction | None = None  # failback --dry-run: what its repair would move

    def lines(self) -> list[str]:
        if self.runbook is not None:
            moved = ["", "What the repair would move over the link now (the members' published figures):",
                     *(f"  {line}" for line in self.prediction.lines())] if self.prediction is not None else []
            return text_lines(self.runbook) + moved
        if self.outcome is not None and self.outcome.timings:
            where = "of" if self.verb == "reseed" else "to"
            return [f"{self.verb} {where} {self.to} done; timings (s): {self.outcome.timings}"]
        return []

    def as_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb,
            "to": self.to,
            "dry_run": self.runbook is not None,
            "runbook": self.runbook,
            "outcome": None if self.outcome is None else dataclasses.asdict(self.outcome),
            **({"prediction": self.prediction.as_dict()} if self.prediction is not None else {}),
        }


def _confirm(ask: Callable[[str], bool], pair: Pair) -> Callable[[str], None]:
    """Ask first, lease after: the lease is taken right after a yes (it refuses if another run held it while the
    question was open); a procedure that writes without asking takes it at its first guarded write."""
    def confirm(question: str) -> None:
        if not ask(question):
            raise RolegenError("aborted: nothing was changed")
        if pair.lease is not None:
            pair.lease.take()

    return confirm


def _run(env_dir: Path, opts: RoleOptions, log: Log, verb: str, body: Callable[[Pair], T]) -> RoleChangeResult:
    pair = load_pair(env_dir, opts.to, kubeconfig=opts.kubeconfig, log=log)
    # The APIs through a proxy each, watched, for the whole run (SitePair.live); a failover's old site and the
    # witness it may not reach excepted.
    failover = verb == "failover"
    witness = (pair.witness.cluster,) if pair.witness is not None and not failover else ()
    try:
        with pair.live(pair.log, target_only=failover, also=witness):
            return _leased(pair, opts, verb, body)
    except ClusterError as exc:
        # A site's API unreachable at any point of a role verb (a reset or refused route, before or during its
        # steps): nothing after it was done, and the same command is the next one, whatever the call's own hint.
        if "re-run" not in (exc.hint or ""):
            exc.hint = f"{exc.hint}; {RERUN_HINT}" if exc.hint else RERUN_HINT
        raise


def _leased(pair: Pair, opts: RoleOptions, verb: str, body: Callable[[Pair], T]) -> RoleChangeResult:
    unattended = opts.evidence_timeout is not None and verb == "failover"
    if unattended:
        # The guard's failover: a silent old site (lost, its route dropping packets) answers nothing within
        # kubectl's default 20 s, each time the steps ask it before the promotion. Its calls are bounded (a
        # healthy API answers in milliseconds; one that does not is "unreachable", and the rules decided
        # already), and its role-change lease is not asked before a write to it.
        other = pair.other.environment
        pair.clusters[other] = pair.clusters[other].brief(min(opts.evidence_timeout or 0, OLD_SITE_REQUEST_TIMEOUT))
    # Its Events on both sites, and its history record on both once it ends, refused or not (rolegen history).
    journal = pair.journal = Journal.begin(pair, verb, pair.log)
    lease = pair.role_lease(f"{verb} --to {opts.to}", force=opts.force, log=pair.log,
                            other_may_be_gone=verb == "failover")
    try:
        if unattended:
            lease.defer(pair.other.environment)
        lease.observe()  # a run that could not take the lease fails now, before anyone is asked
        with lease.held(lazy=True):
            pair.lease = lease
            result = RoleChangeResult(verb, opts.to, outcome=body(pair))
            journal.finish()  # while the lease is held
            return result
    except BaseException as exc:
        journal.finish(exc)
        raise


def _dry_run(env_dir: Path, opts: RoleOptions, log: Log, verb: str, runbook: Callable[[Pair], str]) -> RoleChangeResult:
    return RoleChangeResult(verb, opts.to, runbook=runbook(load_pair(env_dir, opts.to, log=log)))


def run_switchover(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> RoleChangeResult:
    if opts.dry_run:
        return _dry_run(env_dir, opts, log, "switchover", switchover.dry_run)
    return _run(env_dir, opts, log, "switchover",
                lambda pair: switchover.run(pair, confirm=_confirm(ask, pair), timeout=opts.timeout))


def run_failover(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> RoleChangeResult:
    if opts.dry_run:
        return _dry_run(env_dir, opts, log, "failover", failover.dry_run)
    return _run(env_dir, opts, log, "failover", lambda pair: failover.run(
        pair, confirm=_confirm(ask, pair), timeout=opts.timeout, accept_data_loss=opts.accept_data_loss,
        old_site_down=opts.old_site_down, evidence_timeout=opts.evidence_timeout))


def run_failback(
    env_dir: Path, opts: RoleOptions, method: Method, ask: Callable[[str], bool], log: Log
) -> RoleChangeResult:
    if opts.dry_run:
        pair = load_pair(env_dir, opts.to, kubeconfig=opts.kubeconfig, log=log)
        return RoleChangeResult("failback", opts.to, runbook=failback.dry_run(pair), prediction=_predicted(pair))
    return _run(env_dir, opts, log, "failback",
                lambda pair: failback.run(pair, method=method, confirm=_confirm(ask, pair), timeout=opts.timeout))


def _predicted(pair: Pair) -> Prediction:
    """The dry-run's prediction; a site that cannot be read leaves it unknown (the runbook is still printed)."""
    try:
        return failback.prediction(pair)
    except RolegenError as exc:
        return Prediction(None, None, why=(f"the sites could not be read: {exc.message}",))


def run_reseed(env_dir: Path, opts: RoleOptions, ask: Callable[[str], bool], log: Log) -> RoleChangeResult:
    """Re-seed the standby site `opts.to` in place (a lost DR slot): its peer keeps leading."""
    if opts.dry_run:
        return _dry_run(env_dir, opts, log, "reseed", reseed.dry_run)
    return _run(env_dir, opts, log, "reseed",
                lambda pair: reseed.run(pair, confirm=_confirm(ask, pair), timeout=opts.timeout))
