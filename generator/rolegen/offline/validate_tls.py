"""TLS and REST API rules of validate: one site's settings, and what the two sites of a pair must agree on.

What rolegen can tell offline: the modes, which Secrets are referenced, and, when a spec lists the names its
certificate carries (`tls.server_names`), whether they cover the names that will be checked. What it cannot:
the certificates themselves (they live in the cluster, in Secrets rolegen never reads).
"""

from __future__ import annotations

import ipaddress

from rolegen.errors import Problem
from rolegen.offline.spec import Spec


def spec_problems(spec: Spec) -> list[Problem]:
    """Rules of one spec the schema cannot express."""
    problems: list[Problem] = []
    src, tls = spec.source, spec.tls
    if not tls.enabled:
        problems.append(Problem(src, "$.tls.mode", (
            "TLS is disabled: replication and pg_rewind cross the tunnel in clear text, and the standby cannot "
            "tell its real peer from anything answering on the tunnel's address"), "warning"))
        for key, on in (("client_cert", tls.client_cert), ("rest_api", tls.rest_api)):
            if on:
                problems.append(Problem(src, f"$.tls.{key}", "needs TLS, but tls.mode is disabled"))
    if "restapi" not in spec.secrets:
        problems.append(Problem(src, "$.secrets", (
            "no restapi Secret: Patroni's REST API accepts POST /restart, /reinitialize, /switchover and "
            "PATCH /config without authentication from anything the NetworkPolicy admits"), "warning"))
    if tls.mode == "verify-full" and tls.server_names:
        members = f"{spec.release}-0.{spec.release}-headless.{spec.namespace}.svc"
        if not covers(tls.server_names, members):
            problems.append(Problem(src, "$.tls.server_names", (
                f"with verify-full, members dial each other by name ({members}, ...): the certificate must "
                f"also name *.{spec.release}-headless.{spec.namespace}.svc"), "warning"))
    return problems


def pair_problems(a: Spec, b: Spec) -> list[Problem]:
    """Both sites on the same side of TLS; each certificate names the host its peer dials."""
    problems: list[Problem] = []
    if a.tls.enabled != b.tls.enabled:
        on, off = (a, b) if a.tls.enabled else (b, a)
        message = (f"{on.environment} requires TLS ({on.tls.mode}) and {off.environment} has it disabled: the "
                   "pair could not replicate in one direction or the other; both sites use TLS, or neither")
        problems += [Problem(s.source, "$.tls.mode", message) for s in (a, b)]
    for site, peer in ((a, b), (b, a)):
        if peer.tls.mode != "verify-full" or not site.tls.server_names:
            continue
        if not covers(site.tls.server_names, peer.peer.host):
            problems.append(Problem(site.source, "$.tls.server_names", (
                f"{peer.environment} dials this site as {peer.peer.host!r} with sslmode verify-full, and this "
                f"certificate does not name it ({', '.join(site.tls.server_names)}): the standby would refuse it"),
                "warning"))
    return problems


def covers(names: tuple[str, ...], host: str) -> bool:
    """Would libpq's verify-full accept a certificate naming `names` for `host`? A leading `*.` matches one
    label; an IP address matches only itself (libpq checks IP addresses against IP SANs)."""
    host = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for name in (n.lower().rstrip(".") for n in names):
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                pass
            continue
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False
