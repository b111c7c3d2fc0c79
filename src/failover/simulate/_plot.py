"""The ``--plot`` picture of ``failover simulate``: one panel per candidate, stacked.

Each panel shows the share of calls answered and the share answered by the watched
endpoint over time, on a background coloured by the watched breaker's state (red open,
amber half-open), with the scenario's incidents marked. Needs matplotlib (extra
``plot``); this module is imported only when ``--plot`` is given, and draws with the Agg
backend so no display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._engine import RunResult
from ._scenarios import Scenario

__all__ = ["plot"]

_STATE_COLOURS = {"open": "#e45756", "half_open": "#f2b447"}
# Small enough for a docs page, sharp enough to read the state bands.
_DPI = 80


def plot(results: Sequence[RunResult], scenario: Scenario, path: str) -> None:
    """Draw the runs and save them as an image (the format follows ``path``'s suffix).

    Args:
        results: one run per candidate, all against ``scenario``.
        scenario: what was simulated (its incidents are marked).
        path: where to write the picture.
    """
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display, same output everywhere
    from matplotlib import pyplot

    height = 0.6 + 1.5 * len(results)
    figure, axes = pyplot.subplots(len(results), 1, figsize=(9, height), sharex=True, squeeze=False)
    low, high = _view(results[0], scenario)
    scale, unit = (60.0, "min") if high - low > 600 else (1.0, "s")
    for ax, result in zip(axes[:, 0], results, strict=True):
        _panel(ax, result, scenario, scale)
    axes[-1, 0].set_xlim(low / scale, high / scale)
    axes[-1, 0].set_xlabel(f"virtual time ({unit})")
    axes[0, 0].legend(loc="center left", fontsize=7, ncol=5, framealpha=0.9)
    figure.suptitle(scenario.description, fontsize=9)
    figure.tight_layout(h_pad=0.3)
    figure.savefig(path, dpi=_DPI)
    pyplot.close(figure)


def _panel(ax: Any, result: RunResult, scenario: Scenario, scale: float) -> None:
    width = result.bin_width
    end = width * len(result.arrived)
    times = [(i + 0.5) * width / scale for i in range(len(result.arrived))]
    answered = [_share(a, n) for a, n in zip(result.answered_bins, result.arrived, strict=True)]
    primary = [_share(a, n) for a, n in zip(result.by_watched, result.arrived, strict=True)]
    for i, (start, stop) in enumerate(scenario.incidents):
        ax.axvspan(start / scale, stop / scale, ymin=0.93, ymax=1.0, color="#555555", lw=0,
                   label=None if i else "trouble")  # fmt: skip
    state, since = "closed", 0.0
    labelled: set[str] = set()
    for t, new in [*result.transitions, (end, "closed")]:
        if state in _STATE_COLOURS:
            label = state.replace("_", "-") if state not in labelled else None
            labelled.add(state)
            ax.axvspan(since / scale, t / scale, color=_STATE_COLOURS[state], alpha=0.35,
                       lw=0, label=label)  # fmt: skip
        state, since = new, t
    # steps, not lines: each value is a bin's share, and a line would smear the edges
    ax.step(times, answered, where="mid", color="#1f5fa8", lw=1.2, label="answered")
    ax.step(times, primary, where="mid", color="#2a9d5b", lw=1.0, ls="--",
            label=f"by {result.watched}")  # fmt: skip
    ax.set_ylim(-3, 108)
    ax.set_ylabel("% calls", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(
        f"{result.candidate.label}: {result.availability:.2%} answered, {result.wasted} wasted",
        fontsize=8,
        loc="left",
    )


def _view(result: RunResult, scenario: Scenario) -> tuple[float, float]:
    """The time span to draw: the whole run, or around the incidents when they are short."""
    end = result.bin_width * len(result.arrived)
    if not scenario.incidents:
        return 0.0, end
    first, last = scenario.incidents[0][0], scenario.incidents[-1][1]
    if last - first > end / 2:
        return 0.0, end
    # room on both sides to see the breaker open and the traffic come back
    margin = max(60.0, (last - first) / 2)
    return max(0.0, first - margin), min(end, last + margin)


def _share(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else float("nan")
