"""Analyses of engagement beyond the alliance score: attendance and dropout, therapist and patient
contributions, sudden gains. Each analysis lives in its own module (``sudden_gains`` for Tang &
DeRubeis's sudden gains and losses); this package file imports none of them, so that importing
one analysis never pulls in the others.
"""
