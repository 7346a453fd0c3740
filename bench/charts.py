"""The pictures bench/README.md shows: a containment's timeline, and TTC against K."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from bench.harness import RESULTS

CORES = os.cpu_count() or 1

COLORS = {
    "aws": "#d97706",
    "vault": "#0f766e",
    "gcp": "#2563eb",
    "azure": "#0891b2",
    "slack": "#7c3aed",
    "github": "#1f2937",
    "openai": "#059669",
    "anthropic": "#b45309",
}
LABELS = {
    "serial_s": "serial (naive script)",
    "parallel_s": "parallel (break-glass)",
    "flow_warm_s": "flow-warm (service)",
    "cli_cold_s": "cli-cold",
    "bound_s": "lower bound",
}


def draw(rows: Sequence[Mapping[str, Any]], timelines: Mapping[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, drawn in timelines.items():
        providers = drawn.get("providers", {})
        if not providers:
            continue
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(providers) + 1.8))
        phases = drawn.get("phases", {})
        for i, (provider, p) in enumerate(reversed(list(providers.items()))):
            color = COLORS.get(provider, "#6b7280")
            # The run's own phase times where it has them (the ledger has when each action
            # ended, not when the provider's work began).
            phase = phases.get(provider)
            first = phase["start_s"] if phase else p["first_s"]
            contained = first + phase["contain_s"] if phase else p.get("contain_end_s", first)
            dead = max(p["dead_s"] or [contained])
            ax.barh(i, contained - first, left=first, color=color, alpha=0.45, height=0.6)
            ax.barh(i, max(dead - contained, 0.005), left=contained, color=color, height=0.6)
            if "detach_end_s" in p:
                ax.plot([contained, p["detach_end_s"]], [i - 0.38, i - 0.38], color=color, lw=2)
            for moment in p["dead_s"]:
                ax.plot(moment, i, marker="|", color="white", markersize=8)
        starts = [t["start_s"] for t in phases.values()]
        if starts:
            ax.barh(-1, min(starts), color="#e5e7eb", hatch="//", edgecolor="#9ca3af", height=0.6)
        labels = ["plan", *reversed(list(providers))] if starts else list(reversed(providers))
        ax.set_yticks(range(-1 if starts else 0, len(providers)), labels)
        ax.set_xlim(left=0)
        bound = drawn.get("bound_s")
        if bound:
            ax.axvline(bound, color="#dc2626", linestyle="--", lw=1)
            ax.axvline(3 * bound, color="#dc2626", linestyle=":", lw=1)
            ax.text(bound, len(providers) - 0.4, " bound", color="#dc2626", fontsize=8)
            ax.text(3 * bound, len(providers) - 0.4, " 3× bound", color="#dc2626", fontsize=8)
        last = max((m for p in providers.values() for m in p["dead_s"]), default=0.0)
        if last:
            ax.axvline(last, color="#111827", lw=1)
            ax.text(last, -1.45 if starts else -0.45, " all proven", fontsize=8)
        ax.set_xlabel("seconds since the run started")
        ax.set_title(
            f"one containment, {name.replace('_', ', ')} ms\nhatched = plan, pale = contain, "
            "solid = probing until the last dead (ticks: verdicts), line = detaching",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(RESULTS / f"timeline_{name}.png", dpi=110)
        plt.close(fig)

    for latency in sorted({row["L"] for row in rows}):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        subset = [row for row in rows if row["L"] == latency]
        ks = [row["K_actual"] for row in subset]
        for key, label in LABELS.items():
            ax.plot(
                ks,
                [row[key] for row in subset],
                marker="o",
                label=label,
                linestyle="--" if key == "bound_s" else "-",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("credentials held by the agent (K)")
        ax.set_ylabel("time to proven containment (s)")
        ax.set_title(f"time to containment vs K, {latency:.0f} ms per provider call")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(RESULTS / f"ttc_vs_k_L{int(latency)}.png", dpi=110)
        plt.close(fig)


def draw_fleet(runs: Sequence[Mapping[str, Any]]) -> None:
    """Credentials proven per second against the worker count, beside what the stand-ins
    could serve for the same calls; and where the machine's CPU went."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        return
    workers = [str(r["workers"]) for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.8))
    left.bar(workers, [r["credentials_per_s"] for r in runs], color="#2563eb", label="proven/s")
    left.plot(
        workers,
        [r["ceiling_credentials_per_s"] for r in runs],
        color="#dc2626",
        marker="o",
        linestyle="--",
        label="stand-ins' ceiling",
    )
    left.plot(
        workers,
        [r.get("replay_credentials_per_s") or 0 for r in runs],
        color="#059669",
        marker="s",
        linestyle="--",
        label="the same calls replayed (this machine)",
    )
    left.plot(
        workers,
        [0.8 * (r.get("replay_credentials_per_s") or 0) for r in runs],
        color="#059669",
        linestyle=":",
        label="80% of the replay",
    )
    left.set_xlabel("workers")
    left.set_ylabel("credentials proven dead per second")
    left.set_title(f"{runs[0]['credentials']} credentials, {runs[0]['latency_ms']:.0f} ms a call")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    parts = list(runs[0].get("cpu_s", {}))
    bottom = [0.0] * len(runs)
    for i, part in enumerate(parts):
        values = [r["cpu_s"].get(part, 0.0) / r["seconds"] for r in runs]
        right.bar(workers, values, bottom=bottom, label=part, color=f"C{i}")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.axhline(CORES, color="#111827", lw=1)
    right.text(-0.4, CORES, " cores on this machine", fontsize=8, va="bottom")
    right.set_xlabel("workers")
    right.set_ylabel("cores busy (CPU seconds / wall second)")
    right.set_title("where the CPU went")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    fig.tight_layout()
    fig.savefig(RESULTS / "fleet_workers.png", dpi=110)
    plt.close(fig)
