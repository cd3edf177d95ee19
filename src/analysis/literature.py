"""Published reference values the results are read against (docs/methods.md section 6)."""

from __future__ import annotations

#: Flückiger, Del Re, Wampold & Horvath (2018), Psychotherapy 55(4), 316-340: the alliance-outcome
#: correlation over 295 studies and more than 30,000 patients. Mostly a between-patient quantity.
META_ANALYTIC_R = 0.278
META_ANALYTIC_CI = (0.256, 0.299)
META_ANALYTIC_SOURCE = (
    "Flückiger, Del Re, Wampold & Horvath (2018), Psychotherapy 55(4): 295 studies, "
    "more than 30,000 patients"
)

#: Therapist effects usually explain about 5% of outcome variance (e.g. Baldwin & Imel, 2013).
TYPICAL_THERAPIST_SHARE = 0.05

#: A scale has a ceiling effect when more than 15% of respondents score its maximum
#: (Terwee et al., 2007, J Clin Epidemiol 60(1)); the default of ``report.ceiling_share``.
CEILING_SHARE = 0.15
