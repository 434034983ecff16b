"""Options shared by the commands that read or write a cluster: kubeconfig and context."""

from __future__ import annotations

from pathlib import Path

import typer

from scaler.settings import Settings

KubeconfigOption = typer.Option(
    None,
    "--kubeconfig",
    help="Kubeconfig file; overrides kubernetes.kubeconfig_path (not the files under 'clusters').",
)
ContextOption = typer.Option(
    None,
    "--context",
    help="Kubeconfig context; overrides kubernetes.context (not the contexts under 'clusters').",
)


def with_kubeconfig(settings: Settings, kubeconfig: Path | None, context: str | None) -> Settings:
    """Return ``settings`` with the --kubeconfig and --context options applied."""
    overrides = {
        key: value
        for key, value in (("kubeconfig_path", kubeconfig), ("context", context))
        if value is not None
    }
    if not overrides:
        return settings
    kubernetes = settings.kubernetes.model_copy(update=overrides)
    return settings.model_copy(update={"kubernetes": kubernetes})
