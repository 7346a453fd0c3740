"""The pictures bench/README.md shows: a containment's timeline, and TTC against K."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.harness import RESULTS

COLORS = {
    "aws": "#d97706",
    "vault": "#0f766e",
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

    for name, bars in timelines.items():
        fig, ax = plt.subplots(figsize=(9, max(3.0, 0.12 * len(bars) + 1.5)))
        for i, bar in enumerate(bars):
            color = COLORS.get(bar["provider"], "#6b7280")
            ax.barh(i, bar["contained_s"], color=color, alpha=0.35)
            ax.barh(
                i,
                max(bar["dead_s"] - bar["contained_s"], 0.002),
                left=bar["contained_s"],
                color=color,
            )
        ax.set_yticks([])
        ax.set_xlabel("seconds since the run started")
        ax.set_title(
            f"one containment ({name.replace('_', ', ')} ms): pale = until the "
            "provider's contain phase ended, solid = probing until dead"
        )
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
        ax.legend(handles, list(COLORS), loc="lower right", fontsize=8)
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
