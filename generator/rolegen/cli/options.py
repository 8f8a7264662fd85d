"""Every option alias and help text the CLI's command modules share, each defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rolegen.console import Format, StatusFormat

EXIT_CODES = "Exit codes: 0 ok; 1 validation failure, stale output or error; 2 usage error; 130 interrupted."
DRIFT_EXIT_CODE = "diff --detailed-exitcode: 2 also when there is drift (as helm diff), 0 when there is none."

# Shared option aliases, defined once.
DirOption = Annotated[
    Path, typer.Option("--dir", "-d", help="Environments directory.", file_okay=False, show_default=True)
]
EnvOption = Annotated[list[str], typer.Option("--env", "-e", help="Environment name (repeatable).")]
OneEnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment name.")]
AllOption = Annotated[bool, typer.Option("--all", "-a", help="Every environment.")]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
StatusFormatOption = Annotated[
    StatusFormat,
    typer.Option("--format", "-f", help="Output format; prometheus: the pair's metrics in Prometheus's text format "
                 "(exit 0 whenever they were read: health is in the metrics)."),
]


KubeconfigOption = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).", dir_okay=False),
]
ContextOption = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context (default: kubernetes.context of the spec).")
]


ToOption = Annotated[str, typer.Option("--to", help="Environment that becomes leader.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the plan or runbook; change nothing.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds each wait may take.", min=1)]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Take over an expired role-change lease (never a live one)."),
]


LabRootOption = Annotated[Path | None, typer.Option("--root", help="Lab directory (default: per-user, /var/tmp).")]
K8sBinOption = Annotated[
    Path | None,
    typer.Option(
        "--k8s-bin",
        help="Directory with kube-apiserver, kube-controller-manager and etcd "
        "(default: $KUBEBUILDER_ASSETS, then the cache `rolegen lab build` fills).",
        file_okay=False,
    ),
]


def _use_kube_client(value: str | None) -> str | None:
    from rolegen import console
    from rolegen.cluster import kubectl, kubectl_client

    kubectl.use_client(value)  # every Cluster of this command runs it; None: $ROLEGEN_KUBE_CLIENT, then by version
    kubectl_client.on_warning(console.warning)  # the commands with this option are those that contact sites
    return value


KubeClientOption = Annotated[
    str | None,
    typer.Option(
        "--kube-client",
        help="Cluster client, a path or a name on PATH: kubectl or oc (default: $ROLEGEN_KUBE_CLIENT, then "
        "kubectl or oc on PATH within one minor version of the site's API server, then the kubectl installed "
        "with rolegen).",
        callback=_use_kube_client,
    ),
]
