"""Manuscript outputs: what an author pastes into a paper, made from the result tables of a run.

- :mod:`analysis.manuscript.apa`: the APA-style tables (primary and sensitivity models, random
  effects, RI-CLPM, multiverse) as :class:`~analysis.manuscript.apa.ApaTable`, one structure
  that both writers print;
- :mod:`analysis.manuscript.word`: the tables and the methods section as Word documents
  (python-docx), written so that the same inputs give the same bytes;
- :mod:`analysis.manuscript.latex`: the tables as booktabs LaTeX (a file to ``\\input`` and a
  standalone wrapper that compiles);
- :mod:`analysis.manuscript.flow`: the participant flow diagram (CONSORT style) from the
  published, suppressed ``data_flow.csv``, as SVG and PDF;
- :mod:`analysis.manuscript.methods`: the reviewer report's methods section as Word content,
  with the reference list of the works it cites (:mod:`analysis.manuscript.references`);
- :mod:`analysis.manuscript.figures`: the pipeline's figures at journal column widths;
- :mod:`analysis.manuscript.stage`: the manuscript step of the workflow (reads, calls, writes).

Every number printed comes from the result tables (``results/tables``) of the same run, printed
by the report's own formatting functions (:mod:`analysis.report.formatting`), so the paper, the
report and the CSV tables agree digit for digit.
"""
