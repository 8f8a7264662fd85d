"""`rolegen apply`'s two decisions, pure (no IO, no clock): whether a plan would change a role (refused: Helm and
apply never promote or demote; that is what the role verbs, with their fence, LSN gate and slot handling, are
for), and whether the site moved between the plan the user confirmed and the read taken under the lease."""

from __future__ import annotations

from rolegen.cluster.site_diff import SitePlan
from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec


def role_change_refusal(spec: Spec, plan: SitePlan) -> RolegenError | None:
    """The refusal when the live DCS config declares another role than the spec (None: same role, or no config
    yet: the chart renders the declared role when it creates `<scope>-config`)."""
    env, peer, live = spec.environment, spec.peer.environment, plan.dcs_role
    if live is None or live == spec.role or restores(spec, plan):
        return None
    leader = env if spec.role == "leader" else peer
    return RolegenError(
        f"refusing to apply {env}: its spec declares {spec.role}, its live DCS config {live}; apply never changes "
        f"a role (a promotion needs the fence, the LSN gate and the DR slot handling of a role verb), and nothing "
        f"was changed on either site",
        hint=f"record the live roles first: rolegen render --env {env} --role {live} (and its peer's spec likewise; "
        f"that alone is the fix if {env} should stay {live}). Then, to make {leader} leader: rolegen switchover "
        f"--to {leader} (both sites answer) or rolegen failover --to {leader} (the other site is lost)",
    )


def restores(spec: Spec, plan: SitePlan) -> bool:
    """The live DCS config declares another role than the spec, but Patroni still runs the declared one (paused,
    hung, or a role change stopped before Patroni acted on it): writing the declared role back changes nothing
    that runs; it defuses what the next resume or restart would do. The caller still checks that the peer does
    not lead before writing `leader` back."""
    return plan.dcs_role is not None and plan.dcs_role != spec.role and plan.live_role == spec.role


def moved(shown: SitePlan, fresh: SitePlan) -> list[str]:
    """What differs between the plan shown before the prompt and the one read under the lease (empty: nothing
    that apply acts on). Patroni's own annotations and the object's resourceVersion alone do not count: the
    guarded write re-reads on a conflict anyway."""
    found: list[str] = []
    if (shown.revision, shown.release_status) != (fresh.revision, fresh.release_status):
        found.append(f"Helm release revision {shown.revision} ({shown.release_status}) -> "
                     f"{fresh.revision} ({fresh.release_status})")
    if shown.dcs_role != fresh.dcs_role:
        found.append(f"DCS config role {shown.dcs_role} -> {fresh.dcs_role}")
    elif shown.live_config != fresh.live_config:
        found.append("DCS config annotation rewritten")
    if shown.live_role != fresh.live_role:
        found.append(f"Patroni reports {shown.live_role or 'no leader'} -> {fresh.live_role or 'no leader'}")
    if not found and shown.differences != fresh.differences:
        found.append("the differences shown")
    return found


def moved_error(env: str, changes: list[str]) -> RolegenError:
    return RolegenError(
        f"{env} changed since the plan was shown ({'; '.join(changes)}); nothing was changed",
        hint=f"review it and re-run rolegen apply --env {env}",
    )
