"""Number formats of the report's sentences and tables."""

from __future__ import annotations

import math

import pytest

from deltatune.report.wording import fmt_p, fmt_prob


@pytest.mark.parametrize(("p", "text"), [
    (1.0, "> 0.999"), (0.99996, "> 0.999"), (0.999, "0.999"), (0.5, "0.500"), (0.0004, "< 0.001"),
    (0.0, "< 0.001"), (math.nan, "–"),
])
def test_posterior_probabilities_read_like_the_p_values_beside_them(p: float, text: str) -> None:
    """The Bayesian probabilities printed "1.00" and "0" beside p-values of "< 0.001": one format, the
    ends bounded as the p-values' are."""
    assert fmt_prob(p) == text
    if p < 0.001:
        assert fmt_prob(p) == fmt_p(p)
