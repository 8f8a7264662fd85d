"""`diff` and `apply` for dependents: each dependent as read (rolegen.cluster.dependents) against its shape for the
site's declared role, as differences of section `dependents` in the site's plan (`$.<name>.spec.replicas`,
`$.<name>.values.<key>`, `$.<name>` when it is missing). The comparison is pure (`differences`); `with_dependents`
reads the site's dependents and adds them to a plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rolegen.cluster.dependents import DependentNotReady, DependentState, reach, read_all
from rolegen.cluster.kubectl import Cluster
from rolegen.cluster.site_diff import Difference, SitePlan, compare
from rolegen.errors import RolegenError
from rolegen.offline.spec import Spec

SECTION = "dependents"


def differences(role: str, states: tuple[DependentState, ...]) -> list[Difference]:
    """Every way the dependents differ from their shape for `role` (live -> declared)."""
    found: list[Difference] = []
    for state in states:
        dep, at = state.dependent, f"$.{state.dependent.name}"
        if not state.found:
            found.append(Difference(SECTION, at, "missing", None, dep.target))
        elif dep.helm:
            assert state.release is not None
            found += [replace(d, path=f"{at}.values{d.path[1:]}")
                      for d in compare(SECTION, state.release.values, dep.shape(role))]
            if state.release.status != "deployed":
                found.append(Difference(SECTION, f"{at}.status", "changed", state.release.status, "deployed"))
        elif state.workloads and state.workloads[0].replicas != dep.replicas[role]:
            found.append(Difference(SECTION, f"{at}.spec.replicas", "changed", state.workloads[0].replicas,
                                    dep.replicas[role]))
    return found


def with_dependents(plan: SitePlan, spec: Spec, cluster: Cluster) -> SitePlan:
    """`plan` with the site's dependents read and compared (a spec without dependents: `plan` itself, no read)."""
    if not spec.dependents:
        return plan
    states = read_all(cluster, spec.dependents)
    return replace(plan, differences=(*plan.differences, *differences(spec.role, states)), dependents=states)


def missing_workloads(plan: SitePlan) -> RolegenError | None:
    """apply's refusal when a Deployment/StatefulSet dependent does not exist: rolegen scales it, never creates
    it (a Helm dependent's missing release is installed)."""
    missing = [s.dependent for s in plan.dependents if not s.found and not s.dependent.helm]
    if not missing:
        return None
    names = ", ".join(d.target for d in missing)
    return RolegenError(
        f"refusing to apply {plan.environment}: {names} not found on context {plan.context}; rolegen scales a "
        "dependent workload, never creates it, and nothing was changed",
        hint="deploy the application first (with its own pipeline), or remove it from the spec's dependents; then "
        f"re-run rolegen apply --env {plan.environment}",
    )


def converge(plan: SitePlan, spec: Spec, cluster: Cluster, *, guard: Callable[[], None],
             progress: Callable[[str], None]) -> list[str]:
    """apply's last step: each dependent that differs gets its shape for the declared role and is waited for (its
    timeout); `guard` (the role-change lease's check) runs before each write. Returns the names converged. One
    that does not get there stops apply with what it left."""
    drifting = {d.path[2:].split(".", 1)[0] for d in plan.differences if d.section == SECTION and d.drift}
    done: list[str] = []
    for dep in spec.dependents:
        if dep.name not in drifting:
            continue
        guard()
        try:
            reach(cluster, spec.namespace, dep, spec.role, lambda line: progress(f"{spec.environment}: {line.strip()}"))
        except DependentNotReady as exc:
            left = f"; {', '.join(done)} converged before it" if done else ""
            raise RolegenError(
                f"{spec.environment}: {exc.message}{left}; what was applied stays applied",
                hint=f"look at it (kubectl -n {spec.namespace} describe {_kind(dep.helm, dep.resource)} ...), then "
                f"re-run rolegen apply --env {spec.environment} (it carries on from what it finds)",
            ) from None
        done.append(dep.name)
    return done


def _kind(helm: bool, resource: str) -> str:
    return "deployments,statefulsets" if helm else resource
