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

#: Sharf, Primavera & Diener (2010), Psychotherapy 47(4), 637-645: clients who dropped out had a
#: weaker alliance, d = 0.55 over 11 studies and 1,301 clients (docs/methods.md section 7).
SHARF_D = 0.55
SHARF_SOURCE = "Sharf, Primavera & Diener (2010), Psychotherapy 47(4): 11 studies, 1,301 clients"

#: Baldwin, Wampold & Imel (2007), J Consult Clin Psychol 75(6), 842-852: therapist variability
#: in the alliance predicted outcome, patient variability did not (80 therapists, 331 clients);
#: Del Re, Flückiger, Horvath, Symonds & Wampold (2012), Clin Psychol Rev 32(7): confirmed
#: across studies (docs/methods.md section 8).
BALDWIN_SOURCE = "Baldwin, Wampold & Imel (2007), J Consult Clin Psychol 75(6)"
DEL_RE_SOURCE = "Del Re, Flückiger, Horvath, Symonds & Wampold (2012), Clin Psychol Rev 32(7)"

#: Tang & DeRubeis (1999), J Consult Clin Psychol 67(6), 894-904: sudden gains in CBT for
#: depression, followed by improvement in the therapeutic relationship (docs/methods.md
#: section 9); identified here as the R package suddengains does (Wiedemann et al. 2020).
TANG_DERUBEIS_SOURCE = "Tang & DeRubeis (1999), J Consult Clin Psychol 67(6)"
SUDDENGAINS_SOURCE = "Wiedemann, Thew, Stott & Ehlers (2020), PLOS ONE 15(3)"
