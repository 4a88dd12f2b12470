"""The fault suite's figures: every test records what it measured, and the terminal
summary prints them all at the end of the run, so they appear in CI output whether or
not pytest captured the tests' own output (``-s`` or not).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURES: list[tuple[str, str, str]] = []  # (check, figure, value)

Record = Callable[[str, object], None]


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Record:
    """``figure("p99 during outage (ms)", 12.3)``: printed in the run's summary."""
    check = request.node.name

    def record(name: str, value: object) -> None:
        text = str(value)
        if isinstance(value, float):
            text = f"{value:.1f}" if abs(value) >= 1 else f"{value:.3f}"
        FIGURES.append((check, name, text))
        request.node.user_properties.append((name, text))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    width = max(len(name) for _, name, _ in FIGURES)
    current = None
    for check, name, value in FIGURES:
        if check != current:
            terminalreporter.write_line(check)
            current = check
        terminalreporter.write_line(f"    {name:<{width}}  {value}")
