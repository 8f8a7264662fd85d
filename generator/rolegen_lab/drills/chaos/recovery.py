"""The recovery policy after a schedule: what an on-call person does with `rolegen status -f json` in front of
them and the README's runbooks in hand, one command at a time, until the baseline site leads again. Pure: the
runner reads the status, asks `next_command`, runs what it says, and reads again (within a bound).

  healthy, the baseline leads                       done
  healthy, the other site leads                     switchover --to BASELINE
  a site DIVERGED                                   failback --to it (failback repairs a divergence)
  a fence pending on a site                         failover --to its peer (a re-run writes the fence)
  one site leads, the specs declare the other       failover --to the leader (a re-run records the roles)
  one site leads, the baseline is its standby       failback --to BASELINE (ends with a switchover back)
  one site leads, the other (not the baseline)      reseed --env it (its peer is a healthy leader)
    does not stream
  neither leads, both fenced (standby)              failover --to BASELINE
  anything else (a site unreachable, members        wait: Patroni settles by itself, or not, and the bound
    restarting)                                       ends the recovery
"""

from __future__ import annotations

from typing import Any

WAIT: list[str] = []  # nothing to run yet: read the status again shortly


def _sites(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s.get("environment")): s for s in status.get("sites", []) if isinstance(s, dict)}


def next_command(status: dict[str, Any] | None, baseline: str) -> list[str] | None:
    """The next rolegen argv (without --yes/--dir/...), WAIT, or None when recovered (healthy, baseline leads)."""
    if not status:
        return WAIT
    sites = _sites(status)
    if baseline not in sites or len(sites) != 2:
        return WAIT
    peer = next(name for name in sites if name != baseline)
    leaders = [name for name, s in sites.items() if s.get("live_role") == "leader"]
    if status.get("healthy"):
        return None if leaders == [baseline] else ["switchover", "--to", baseline]
    for name in (baseline, peer):
        if sites[name].get("diverged"):
            return ["failback", "--to", name]
    for name, other in ((baseline, peer), (peer, baseline)):
        if sites[name].get("fence_pending"):
            return ["failover", "--to", other]
    if len(leaders) == 1:
        leader = leaders[0]
        follower = peer if leader == baseline else baseline
        if sites[follower].get("declared") == "leader":
            return ["failover", "--to", leader]
        if follower == baseline:
            return ["failback", "--to", baseline]
        if "error" not in sites[follower]:
            return ["reseed", "--env", follower]
        return WAIT
    if not leaders and all(s.get("live_role") == "standby-leader" for s in sites.values()):
        return ["failover", "--to", baseline]
    return WAIT
