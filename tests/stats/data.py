"""Published data sets used as worked examples by the statistics tests (sources cited per constant)."""

from __future__ import annotations

import numpy as np

#: Student (1908), "The probable error of a mean", Biometrika 6(1): additional hours of sleep of 10 patients
#: under two soporific drugs (Cushny & Peebles 1905); R's ``datasets::sleep``.
SLEEP_GROUP1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_GROUP2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

#: Darwin's Zea mays data as analysed by Fisher (1935), "The Design of Experiments", §17: height differences
#: (eighths of an inch) of 15 pairs of cross- and self-fertilized plants; the example of
#: ``scipy.stats.wilcoxon``'s documentation.
DARWIN_DIFFERENCES = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]

#: Hollander & Wolfe (1973), "Nonparametric Statistical Methods", p. 140ff: times (s) of 22 baseball
#: players running to second base with three methods of rounding first base; R's ``?friedman.test``
#: example ``RoundingTimes``. Rows = players (blocks), columns = methods.
ROUNDING_METHODS = ("round out", "narrow angle", "wide angle")
ROUNDING_TIMES = np.array(
    [
        [5.40, 5.50, 5.55],
        [5.85, 5.70, 5.75],
        [5.20, 5.60, 5.50],
        [5.55, 5.50, 5.40],
        [5.90, 5.85, 5.70],
        [5.45, 5.55, 5.60],
        [5.40, 5.40, 5.35],
        [5.45, 5.50, 5.35],
        [5.25, 5.15, 5.00],
        [5.85, 5.80, 5.70],
        [5.25, 5.20, 5.10],
        [5.65, 5.55, 5.45],
        [5.60, 5.35, 5.45],
        [5.05, 5.00, 4.95],
        [5.50, 5.50, 5.40],
        [5.45, 5.55, 5.50],
        [5.55, 5.55, 5.35],
        [5.45, 5.50, 5.55],
        [5.50, 5.45, 5.25],
        [5.65, 5.60, 5.40],
        [5.70, 5.65, 5.55],
        [6.30, 6.30, 6.25],
    ]
)
