"""The reviewer report: one self-contained HTML file that answers the question and shows how.

Inputs are the pipeline's result tables (models, random effects, model fit, engine agreement,
repeated-measures correlation, reliability, therapist ICC, episode summary, Jacobson-Truax
parameters, data flow, data quality), two processed files (``sessions.parquet`` for the interval
between sessions, ``scores.parquet`` for the alliance ceiling), the figures' PNG files with their
one-sentence captions, the study's report settings and the provenance. The output,
``results/report/index.html``, holds a plain-language answer, methods generated from the settings
and the data, APA-style tables, the sensitivity analyses, episode outcomes, engine agreement,
limitations and provenance.

The modules, one job each:

- :mod:`~analysis.report.inputs`: reading the tables and figures;
- :mod:`~analysis.report.view`: the study's settings with instruments and models looked up;
- :mod:`~analysis.report.formatting`: numbers and tables as printed (one set of functions);
- :mod:`~analysis.report.answer`, :mod:`~analysis.report.methods`,
  :mod:`~analysis.report.tables`, :mod:`~analysis.report.limitations`: the sections' content;
- :mod:`~analysis.report.render`: the list of sections and the small renderer.

Wording shared with figures and notebooks (labels, titles, test families) lives in
:mod:`analysis.presentation`; provenance in :mod:`analysis.provenance`.
"""
