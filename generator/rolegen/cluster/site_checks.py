"""Time bombs a site can carry while its leader still looks fine: Patroni paused (maintenance mode), a DCS config
whose role differs from the spec or from what Patroni reports (the next resume or restart acts on it), a declared
DR slot missing from the live config. Pure functions of a spec and one snapshot; each finding names the command
that clears it. `rolegen status` reports them; the switchover and failback preflights refuse on them."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.cluster.site_state import SiteState
from rolegen.offline import slots
from rolegen.offline.spec import Spec


@dataclass(frozen=True)
class Finding:
    text: str
    fix: str  # the command that clears it

    def line(self) -> str:
        return f"{self.text}; clear: {self.fix}"


def patronictl(spec: Spec, state: SiteState, verb: str) -> str:
    """`patronictl VERB` run in one of the site's member Pods (the chart's config path)."""
    member = state.leader_member or (state.members[0] if state.members else None)
    pod = member.name if member else "POD"
    return (f"kubectl --context {spec.context or '<context>'} -n {spec.namespace} exec {pod} -c patroni -- "
            f"patronictl -c /etc/patroni/patroni.yml {verb}")


def paused(spec: Spec, state: SiteState) -> Finding | None:
    if not state.paused:
        return None
    # Resuming lets Patroni act on its DCS config at once: when that config would change the role that runs
    # (and the spec declares), write the declared role back first.
    acts = state.dcs_role != spec.role and state.live_role == spec.role
    first = f"rolegen apply --env {spec.environment} first, then " if acts else ""
    return Finding(f"{spec.environment} is paused (Patroni maintenance mode: it acts on no role change and fails "
                   "nothing over)", first + patronictl(spec, state, "resume"))


def site_findings(spec: Spec, state: SiteState, *, fence_pending: bool = False) -> list[Finding]:
    """What is wrong with `state` beyond the live role (that one `rolegen status` reports itself).
    `fence_pending`: the peer leads too; its own line names the fix, so the DCS role is not repeated."""
    env, declared = spec.environment, spec.role
    if state.config is None:
        return [Finding(f"{env} has no DCS config (`config` annotation of {spec.config_map} missing)",
                        f"rolegen apply --env {env}")]
    out: list[Finding] = []
    dcs, live = state.dcs_role, state.live_role
    if dcs != declared and not fence_pending:
        out.append(role_finding(spec, state))
    elif live is not None and live != dcs and not state.paused:  # paused: the pause finding says why
        out.append(Finding(f"{env}'s DCS config declares {dcs} but Patroni reports {live}: Patroni has not acted "
                           f"on it", f"rolegen status after a Patroni loop; if it stays, kubectl --context "
                           f"{spec.context or '<context>'} -n {spec.namespace} logs {state.lock_holder or 'POD'}"))
    pause = paused(spec, state)
    if pause is not None:
        out.append(pause)
    missing = missing_slot(spec, state)
    if missing is not None:
        out.append(Finding(missing, f"rolegen apply --env {env}"))
    return out


def role_finding(spec: Spec, state: SiteState) -> Finding:
    """The DCS config declares another role than the spec: which side is right depends on what runs."""
    env, dcs, live = spec.environment, state.dcs_role, state.live_role
    text = f"{env}'s DCS config declares {dcs}, its spec {spec.role}"
    if live == spec.role:  # Patroni has not acted on it (paused, hung): its next loop would
        return Finding(f"{text}, Patroni still runs it as {live}: its next resume or restart makes it {dcs}",
                       f"rolegen apply --env {env} (writes the declared role back)")
    if live == dcs:  # the roles changed and the spec was not recorded
        return Finding(f"{text}: the spec lags behind", f"rolegen render --env {env} --role {dcs} (records it)")
    # Neither: a role change under way or interrupted (a killed switchover resumes from the live configs).
    to = env if dcs == "leader" else spec.peer.environment
    return Finding(f"{text}, Patroni reports {live or 'no leader'}: a role change under way or interrupted",
                   f"rolegen switchover --to {to} (resumes it)")


def missing_slot(spec: Spec, state: SiteState) -> str | None:
    """The DR slot the spec declares for the role the site holds, when its live DCS config lacks it."""
    if state.config is None or state.dcs_role != spec.role:
        return None
    peer = spec.peer.environment
    if spec.role == "standby-leader":
        name = slots.consumed_slot(spec)
        standby = state.config.get("standby_cluster")
        have = standby.get("primary_slot_name") if isinstance(standby, dict) else None
        if name is not None and have != name:
            return (f"{spec.environment} streams without its DR slot (standby_cluster.primary_slot_name "
                    f"{have or 'missing'}, declared {name}): {peer} may remove WAL it still needs")
    else:
        name = slots.hosted_slot(spec)
        kept = state.config.get("slots")
        if name is not None and not (isinstance(kept, dict) and name in kept):
            return f"{spec.environment}'s DCS config lacks its DR slot {name} (`slots`): Patroni keeps none for {peer}"
    return None
