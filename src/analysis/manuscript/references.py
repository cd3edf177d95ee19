"""The works the methods section cites or whose methods it names, in APA 7 reference style.

Each entry pairs a pattern with its reference: the pattern is how the methods text names the work
(an in-text citation such as "Bakdash & Marusich, 2017", or the method or software it
describes, such as "Jacobson-Truax" or "lavaan"). :func:`cited_references` keeps the entries
whose pattern the text contains, sorted as APA sorts a reference list (by first author, then
year), so a run whose methods do not mention the RI-CLPM does not list it. Italics (journal
names and volumes, titles of books and software papers' journals) are marked with ``*...*`` and
set by the writers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """A work: how the text names it (a regular expression) and its APA reference."""

    pattern: str
    text: str

    def segments(self) -> list[tuple[str, bool]]:
        """The reference as (text, italic) pieces (``*...*`` marks italics)."""
        parts = re.split(r"(\*[^*]+\*)", self.text)
        return [(part.strip("*"), part.startswith("*")) for part in parts if part]

    @property
    def plain(self) -> str:
        return self.text.replace("*", "")


REFERENCES: tuple[Reference, ...] = (
    Reference(r"Allison, Williams",
              "Allison, P. D., Williams, R., & Moral-Benito, E. (2017). Maximum likelihood for "
              "cross-lagged panel models with fixed effects. *Socius, 3*, 1–17. "
              "https://doi.org/10.1177/2378023117710578"),
    Reference(r"Bakdash",
              "Bakdash, J. Z., & Marusich, L. R. (2017). Repeated measures correlation. "
              "*Frontiers in Psychology, 8*, Article 456. "
              "https://doi.org/10.3389/fpsyg.2017.00456"),
    Reference(r"Bates, Kliegl",
              "Bates, D., Kliegl, R., Vasishth, S., & Baayen, H. (2015). *Parsimonious mixed "
              "models* (arXiv:1506.04967). arXiv. https://doi.org/10.48550/arXiv.1506.04967"),
    Reference(r"\blme4\b",
              "Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear "
              "mixed-effects models using lme4. *Journal of Statistical Software, 67*(1), 1–48. "
              "https://doi.org/10.18637/jss.v067.i01"),
    Reference(r"Benjamini-Hochberg",
              "Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate: A "
              "practical and powerful approach to multiple testing. *Journal of the Royal "
              "Statistical Society: Series B (Methodological), 57*(1), 289–300. "
              "https://doi.org/10.1111/j.2517-6161.1995.tb02031.x"),
    Reference(r"Falkenström",
              "Falkenström, F., Finkel, S., Sandell, R., Rubel, J. A., & Holmqvist, R. (2017). "
              "Dynamic models of individual change in psychotherapy process research. *Journal "
              "of Consulting and Clinical Psychology, 85*(6), 537–549. "
              "https://doi.org/10.1037/ccp0000203"),
    Reference(r"RI-CLPM|random-intercept cross-lagged",
              "Hamaker, E. L., Kuiper, R. M., & Grasman, R. P. P. P. (2015). A critique of the "
              "cross-lagged panel model. *Psychological Methods, 20*(1), 102–116. "
              "https://doi.org/10.1037/a0038889"),
    Reference(r"\bHolm\b",
              "Holm, S. (1979). A simple sequentially rejective multiple test procedure. "
              "*Scandinavian Journal of Statistics, 6*(2), 65–70."),
    Reference(r"Hu & Bentler",
              "Hu, L., & Bentler, P. M. (1999). Cutoff criteria for fit indexes in covariance "
              "structure analysis: Conventional criteria versus new alternatives. *Structural "
              "Equation Modeling, 6*(1), 1–55. https://doi.org/10.1080/10705519909540118"),
    Reference(r"Jacobson-Truax",
              "Jacobson, N. S., & Truax, P. (1991). Clinical significance: A statistical "
              "approach to defining meaningful change in psychotherapy research. *Journal of "
              "Consulting and Clinical Psychology, 59*(1), 12–19. "
              "https://doi.org/10.1037/0022-006X.59.1.12"),
    Reference(r"Matuschek",
              "Matuschek, H., Kliegl, R., Vasishth, S., Baayen, H., & Bates, D. (2017). "
              "Balancing Type I error and power in linear mixed models. *Journal of Memory and "
              "Language, 94*, 305–315. https://doi.org/10.1016/j.jml.2017.01.001"),
    Reference(r"\blavaan\b",
              "Rosseel, Y. (2012). lavaan: An R package for structural equation modeling. "
              "*Journal of Statistical Software, 48*(2), 1–36. "
              "https://doi.org/10.18637/jss.v048.i02"),
    Reference(r"Satterthwaite",
              "Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance "
              "components. *Biometrics Bulletin, 2*(6), 110–114. "
              "https://doi.org/10.2307/3002019"),
)


def cited_references(text: str) -> list[Reference]:
    """The references whose pattern ``text`` contains, in reference-list order."""
    cited = [reference for reference in REFERENCES if re.search(reference.pattern, text)]
    return sorted(cited, key=lambda reference: reference.plain.casefold())


__all__ = ["REFERENCES", "Reference", "cited_references"]
