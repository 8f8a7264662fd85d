"""Faults on the operator's side and an operator's own hands (a mixin of `Lab`, by site name): the operator's
route to a site's API cut, slow or flaky (rolegen_lab.network.apiproxy) while the sites see nothing; a member's Pod
force-deleted (`kubectl delete pod --force --grace-period=0`: the StatefulSet recreates it, restartCount 0);
Patroni's maintenance mode and hand-set keys (`patronictl pause` / `edit-config`: written to the DCS config
through Patroni's REST API, as patronictl does). What `rolegen lab api-cut|api-slow|api-flaky|api-heal|delete-pod|
maintenance` and the drills do; each returns what it changed.
"""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any

from rolegen.cluster.wait import poll
from rolegen.errors import RolegenError

if TYPE_CHECKING:
    from rolegen_lab.site import LabSite


class OperatorFaults:
    sites: dict[str, LabSite]
    maintained: set[str]  # sites this lab put in maintenance mode (heal_all resumes them)

    def site(self, name: str) -> LabSite:
        raise NotImplementedError

    def _chosen(self, name: str | None) -> list[LabSite]:
        raise NotImplementedError

    def rest_auth(self) -> dict[str, str]:
        raise NotImplementedError

    # -- the operator's route to the APIs --------------------------------------------------------------------
    def _api_mode(self, site: str | None, mode: str, rate: float = 0.5) -> list[str]:
        chosen = self._chosen(site)
        for s in chosen:
            if s.api_proxy is None:
                raise RolegenError(f"{s.env}: the lab has no API proxy yet (its control plane never started)")
            s.api_proxy.set_mode(mode, rate)
        return [s.env for s in chosen]

    def api_cut(self, site: str) -> list[str]:
        """The operator's connections to `site`'s API are refused (a VPN or API load balancer down)."""
        return self._api_mode(site, "cut")

    def api_slow(self, site: str) -> list[str]:
        """The operator's connections to `site`'s API are accepted and never answered (past kubectl's
        --request-timeout)."""
        return self._api_mode(site, "slow")

    def api_flaky(self, site: str, rate: float = 0.5) -> list[str]:
        """A `rate` fraction of the operator's new connections to `site`'s API fail (reset, or HTTP 503)."""
        return self._api_mode(site, "flaky", rate)

    def api_heal(self, site: str | None = None) -> list[str]:
        """The operator's route to `site`'s API (default: every site's) works again; the sites that changed."""
        chosen = [s for s in self._chosen(site) if s.api_proxy is not None and s.api_proxy.mode != "ok"]
        for s in chosen:
            assert s.api_proxy is not None
            s.api_proxy.set_mode("ok")
        return [s.env for s in chosen]

    def api_route(self, s: LabSite) -> str | None:
        """The operator-side API fault in force on a site (`flaky 0.5`), None without one."""
        proxy = s.api_proxy
        if proxy is None or proxy.mode == "ok":
            return None
        return f"flaky {proxy.rate:g}" if proxy.mode == "flaky" else proxy.mode

    # -- an operator's hands ---------------------------------------------------------------------------------
    def delete_pod(self, site: str, member: str, force: bool = True) -> list[str]:
        """Force-delete a member's Pod (`leader`: the member that led last), grace 0 as `kubectl delete pod
        --force --grace-period=0`: the node agent kills its processes at once, the StatefulSet controller creates
        a new Pod (restartCount 0) that starts with the same volume. `force=False`: `kubectl delete pod`, the
        graceful deletion (SIGTERM: Patroni stops PostgreSQL and releases the leader lock it holds)."""
        s = self.site(site)
        if member == "leader" and s.last_leader is not None:
            # The member that last led: during a switchover's gate it is being demoted and answers /leader no more.
            names = [s.members[s.last_leader].name]
        else:
            names = [s.members[o].name for o in s.resolve(member)]
        for name in names:
            s.api.delete("pods", name, {"gracePeriodSeconds": 0} if force else None)
        return names

    def maintenance(self, site: str, on: bool = True) -> str:
        """`patronictl pause` (on) or `resume` (off) for `site`: `pause: true|false` in its DCS config."""
        self.edit_config(site, {"pause": on})
        (self.maintained.add if on else self.maintained.discard)(site)
        return site

    def edit_config(self, site: str, patch: dict[str, Any]) -> str:
        """`patronictl edit-config` for `site`: PATCH /config with `patch` (a JSON merge patch; null removes a
        key) on the first member whose Patroni answers; Patroni writes its DCS config (version-checked)."""
        s = self.site(site)
        body = json.dumps(patch).encode()
        headers = {"Content-Type": "application/json", **self.rest_auth()}
        with s.agent.lock:
            members = [m for o, m in sorted(s.members.items()) if m.running and o not in s.paused]
        errors: list[str] = []
        for m in members:
            request = urllib.request.Request(f"http://127.0.0.1:{m.rest_port}/config", data=body, method="PATCH",
                                             headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5):
                    return site
            except OSError as exc:  # HTTPError included: the next member may take it
                errors.append(f"{m.name}: {exc}")
        raise RolegenError(f"{site}: no Patroni took PATCH /config ({'; '.join(errors) or 'none running'})",
                           hint="rolegen lab status")

    def operator_faults(self, s: LabSite) -> dict[str, Any]:
        """This mixin's part of `Lab.faults()` for one site."""
        return {"api_route": self.api_route(s), "maintenance": s.env in self.maintained}

    def heal_operator(self) -> None:
        """heal_all's part: routes healed, maintenance mode ended."""
        self.api_heal()
        for name in sorted(self.maintained):
            if not self.site(name).lost:
                self._end_maintenance(name)

    def _end_maintenance(self, name: str, timeout: float = 60) -> None:
        """Members heal_all has just started (held down meanwhile) answer only once their Patroni runs: ask
        until one of them takes the PATCH, for up to `timeout` (then WaitTimedOut names the site)."""

        def ended() -> bool:
            try:
                self.maintenance(name, on=False)
            except RolegenError:
                return False
            return True

        poll(ended, bool, timeout=timeout, every=1.0, what=f"a Patroni of {name} to end maintenance mode")
