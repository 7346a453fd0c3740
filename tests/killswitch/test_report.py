"""The terminal report's convergence footer: when each provider's rejections began to hold,
and every flap (an acceptance after a rejection) shown, never hidden."""

from __future__ import annotations

from killswitch.models import ProviderTiming
from killswitch.report import converge_line


def test_the_footer_names_each_provider_its_convergence_and_its_flaps() -> None:
    line = converge_line(
        (
            ProviderTiming("aws", 0.1, 0.5, 4.0, 4.6, converged_s=3.12, flaps=1),
            ProviderTiming("slack", 0.1, 0.2, 3.1, 3.4, converged_s=3.05),
            ProviderTiming("openai", 0.1, 0.2, 9.0, 9.3, converged_s=None, flaps=2),
        )
    )
    assert line.startswith("aws 3.12s [bold yellow](1 flap: accepted after a rejection)[/]")
    assert " · slack 3.05s · " in line
    assert line.endswith("openai not proven [bold yellow](2 flaps: accepted after a rejection)[/]")
