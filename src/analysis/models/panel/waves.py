"""Which sessions are the waves of the panel models (RI-CLPM, dynamic panel model).

The panel models treat sessions as waves 1..K of a wide panel. Which sessions, and how many, is
chosen here from the data, in one place for every panel model (docs/methods.md; METHODS 4a: "T
chosen from the data: sessions that enough clients reach"):

- **Time origin** (``models.panel.origin``). ``"client"`` (default): each client's first
  observed session (the first session with an alliance or an outcome score) is their wave 1, and
  wave k is the session k - 1 numbers after it. ``"study"``: wave 1 is the study's first observed
  session number (the smallest over clients) and wave k the session k - 1 numbers after it, for
  every client alike. Both keep gaps: a session a client missed is a missing wave (handled by
  full-information maximum likelihood), not a reason to shift their later sessions.
- **How many waves**: the consecutive sessions from the origin that at least ``min_share``
  (``models.panel.min_share``, default 0.5) of the clients reach, at most ``max_waves``
  (``models.panel.max_waves``, default 10). A client reaches wave k when their observed sessions
  span it: their first observed session is at or before it and their last at or after it.

Why these defaults:

- ``origin: client``. It gives the same waves as ``study`` whenever clients' first observed
  sessions share one number (numbered from 1, or all from 3), and it also aligns clients whose
  numbers carry their own offsets (numbering that includes assessment sessions, or runs on across
  episodes), where counting from the study's first number would leave the first waves empty. Its
  cost: a client whose first questionnaire is missing starts one session later than they began
  treatment. Choose ``study`` when session numbers are a clock shared by every client and first
  questionnaires are often missing.
- ``min_share: 0.5``. The wave means and variances of a later wave rest on the clients still in
  treatment; once fewer than half remain, those are the clients who stay long, a selected group,
  and the model's per-wave parameters rest on few of them (the trial in issue 17: 57 clients). At
  least half keeps every wave estimated on most of the sample while using the sessions that the
  typical client attends (e.g. waves 1-8 when the median client attends 8 sessions).
- ``max_waves: 10``. The number of parameters grows with the waves (the RI-CLPM: 5 per wave with
  free innovation variances; the dynamic panel model's alliance covariances: with the square),
  and the early sessions are where the alliance-outcome literature looks (Falkenstroem et al.
  2017). ``null`` removes the cap.

An explicit number of waves (``models.riclpm.sessions``) overrides the choice: the first K
sessions from the origin, whatever share reaches them.

:func:`choose_waves` returns a :class:`WaveChoice` that says which sessions, why, and what share
of clients reached each (for the report); :func:`wide_panel` builds the wide panel from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.errors import ConfigError, DataError

#: The time origins: from the study's first observed session, or from each client's first.
ORIGINS = ("client", "study")
#: Defaults of ``models.panel`` (also in workflow/schemas/config.schema.yaml; see the docstring).
DEFAULT_ORIGIN = "client"
DEFAULT_MIN_SHARE = 0.5
DEFAULT_MAX_WAVES = 10
#: Columns the wave choice reads from the derived frame.
REQUIRED = ("outcome", "client_id", "session", "alliance_score", "symptom_score")


@dataclass(frozen=True)
class WaveChoice:
    """The waves of a panel model, chosen by :func:`choose_waves`.

    Attributes
    ----------
    sessions : tuple of int
        Waves 1..K in order. With origin ``"study"``: the session numbers (e.g. ``(3, 4, 5)``).
        With origin ``"client"``: the positions counted from each client's first observed
        session (``(1, 2, 3)``: their first, second and third session numbers).
    n_waves : int
        K (``len(sessions)``; 0 when no session is reached by enough clients).
    origin : str
        ``"study"`` or ``"client"``.
    min_share : float
        The share of clients a session had to reach.
    share_reaching : tuple of float
        Per wave, the share of clients who reached it (same length as ``sessions``).
    n_clients : int
        Clients of the outcome with at least one score (the denominator of the shares).
    description : str
        The choice in plain words, for the report.
    first_session : int or None
        The study's first observed session number (origin ``"study"``); None for ``"client"``.
    max_waves : int or None
        The cap that was applied (None: no cap).
    explicit : bool
        True when the number of waves was set in the configuration rather than chosen.
    capped : bool
        True when more sessions reached ``min_share`` than ``max_waves`` let in.
    share_by_wave : tuple of float
        The share of clients reaching each wave 1, 2, ... up to the longest course (beyond the
        chosen waves too): what a lower ``min_share`` or another cap would give.
    first_sessions_differ : bool
        Clients' first observed session numbers differ (a hint that ``"client"`` aligns them).
    """

    sessions: tuple[int, ...]
    n_waves: int
    origin: str
    min_share: float
    share_reaching: tuple[float, ...]
    n_clients: int
    description: str
    first_session: int | None = None
    max_waves: int | None = None
    explicit: bool = False
    capped: bool = False
    share_by_wave: tuple[float, ...] = field(default=(), repr=False)
    first_sessions_differ: bool = False

    def as_dict(self) -> dict:
        """Plain, JSON-able values (a stage's result file)."""
        return {
            "sessions": list(self.sessions), "n_waves": self.n_waves, "origin": self.origin,
            "min_share": self.min_share, "share_reaching": list(self.share_reaching),
            "n_clients": self.n_clients, "description": self.description,
            "first_session": self.first_session, "max_waves": self.max_waves,
            "explicit": self.explicit, "capped": self.capped,
            "share_by_wave": list(self.share_by_wave),
            "first_sessions_differ": self.first_sessions_differ,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "WaveChoice":
        """The choice back from :meth:`as_dict`."""
        return cls(**{**values, "sessions": tuple(int(s) for s in values["sessions"]),
                      "share_reaching": tuple(float(s) for s in values["share_reaching"]),
                      "share_by_wave": tuple(float(s) for s in values.get("share_by_wave", ()))})

    def waves_for_share(self, share: float) -> int:
        """How many waves ``min_share = share`` would give (before any cap)."""
        return _leading_at_least(self.share_by_wave, share)

    def share_for_waves(self, waves: int) -> float | None:
        """The largest ``min_share`` that gives at least ``waves`` waves (None: no share does)."""
        if waves < 1 or waves > len(self.share_by_wave):
            return None
        return float(min(self.share_by_wave[:waves]))

    @property
    def session_range(self) -> str:
        """"sessions 3 to 9" (origin study) or "sessions 1 to 7 of each client"."""
        if not self.sessions:
            return "no sessions"
        first, last = self.sessions[0], self.sessions[-1]
        span = f"session {first}" if first == last else f"sessions {first} to {last}"
        return span if self.origin == "study" else f"each client's {span}"


def _leading_at_least(shares, threshold: float) -> int:
    count = 0
    for share in shares:
        if share + 1e-12 < threshold:
            break
        count += 1
    return count


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def choose_waves(derived: pd.DataFrame, outcome: str, *, min_share: float = DEFAULT_MIN_SHARE,
                 max_waves: int | None = DEFAULT_MAX_WAVES, origin: str = DEFAULT_ORIGIN,
                 n_waves: int | None = None) -> WaveChoice:
    """Choose the sessions that are the waves of a panel model of one outcome.

    Parameters
    ----------
    derived : DataFrame
        The pipeline's derived frame: one row per outcome x client x session with columns
        ``outcome, client_id, session, alliance_score, symptom_score`` (others ignored). A
        session is observed for a client when it has an alliance or an outcome score.
    outcome : str
        Whose rows are used.
    min_share : float
        In (0, 1]: a wave must be reached by at least this share of the outcome's clients.
    max_waves : int or None
        At most this many waves (None: no cap).
    origin : {"client", "study"}
        Where wave 1 is: each client's first observed session, or the study's first observed
        session number (the smallest over the outcome's clients).
    n_waves : int or None
        An explicit number of waves (``models.riclpm.sessions``): the first ``n_waves`` sessions
        from the origin, replacing the choice by ``min_share`` and ``max_waves``.

    Returns
    -------
    WaveChoice

    Raises
    ------
    ConfigError
        ``min_share``, ``max_waves``, ``origin`` or ``n_waves`` out of range (naming the key).
    DataError
        Required columns missing, no rows for the outcome, sessions that are not whole numbers.

    Examples
    --------
    >>> frame = pd.DataFrame({"outcome": "phq9", "client_id": ["a"] * 4 + ["b"] * 3,
    ...                       "session": [3, 4, 5, 6, 3, 4, 5], "alliance_score": 5.0,
    ...                       "symptom_score": 10.0})
    >>> choice = choose_waves(frame, "phq9", min_share=0.5, max_waves=None, origin="study")
    >>> choice.sessions, choice.share_reaching
    ((3, 4, 5, 6), (1.0, 1.0, 1.0, 0.5))
    >>> choice.description  # doctest: +NORMALIZE_WHITESPACE
    "sessions 3 to 6, the sessions that at least 50% of clients reached, counted from the
    study's first session (3)"
    """
    _check_options(min_share, max_waves, origin, n_waves)
    observed = _observed_sessions(derived, outcome)
    n_clients = int(observed["client_id"].nunique())
    first = observed.groupby("client_id", sort=False)["session"].min()
    last = observed.groupby("client_id", sort=False)["session"].max()
    study_first = int(first.min()) if n_clients else None
    if origin == "study":
        start = pd.Series(study_first, index=first.index)
        # a client reaches a wave of the shared clock when their observed span covers it
        late = (first - study_first).to_numpy()
    else:
        start = first
        late = np.zeros(len(first), dtype="int64")
    length = (last - start + 1).to_numpy()  # waves from the origin to the client's last
    longest = int(length.max()) if n_clients else 0
    share_by_wave = tuple(
        float(((late <= k - 1) & (length >= k)).sum() / n_clients) for k in range(1, longest + 1)
    ) if n_clients else ()

    capped = False
    if n_waves is not None:
        k = int(n_waves)
    else:
        k = _leading_at_least(share_by_wave, min_share)
        if max_waves is not None and k > max_waves:
            k, capped = int(max_waves), True
    positions = tuple(range(1, k + 1))
    sessions = (tuple(study_first + p - 1 for p in positions) if origin == "study"
                and study_first is not None else positions)
    shares = tuple(share_by_wave[p - 1] if p <= len(share_by_wave) else 0.0 for p in positions)
    differ = bool(n_clients and first.nunique() > 1)
    choice = WaveChoice(
        sessions=sessions, n_waves=k, origin=origin, min_share=float(min_share),
        share_reaching=shares, n_clients=n_clients, description="",
        first_session=study_first if origin == "study" else None, max_waves=max_waves,
        explicit=n_waves is not None, capped=capped, share_by_wave=share_by_wave,
        first_sessions_differ=differ)
    return _with_description(choice)


def _with_description(choice: WaveChoice) -> WaveChoice:
    from dataclasses import replace

    if choice.origin == "study":
        counted = f"counted from the study's first session ({choice.first_session})"
    else:
        counted = "counted from each client's first session with a score"
    if choice.n_waves == 0:
        text = (f"no session was reached by at least {_percent(choice.min_share)} of clients "
                f"({counted})")
    elif choice.explicit:
        text = (f"{choice.session_range}, the first {choice.n_waves} sessions as configured, "
                f"{counted}")
    else:
        text = (f"{choice.session_range}, the sessions that at least "
                f"{_percent(choice.min_share)} of clients reached, {counted}")
        if choice.capped:
            text += f"; capped at {choice.max_waves} waves"
    return replace(choice, description=text)


def _check_options(min_share, max_waves, origin, n_waves) -> None:
    if isinstance(min_share, bool) or not isinstance(min_share, (int, float)) or not (
            0 < float(min_share) <= 1):
        raise ConfigError(f"models.panel.min_share must be a number in (0, 1], got {min_share!r}")
    if max_waves is not None and (isinstance(max_waves, bool)
                                  or not isinstance(max_waves, (int, np.integer))
                                  or max_waves < 1):
        raise ConfigError(
            f"models.panel.max_waves must be a whole number >= 1 or null, got {max_waves!r}")
    if origin not in ORIGINS:
        raise ConfigError(
            f"models.panel.origin must be one of {list(ORIGINS)}, got {origin!r}")
    if n_waves is not None and (isinstance(n_waves, bool)
                                or not isinstance(n_waves, (int, np.integer)) or n_waves < 1):
        raise ConfigError(
            f"models.riclpm.sessions must be a whole number >= 1 or null, got {n_waves!r}")


def _rows(derived: pd.DataFrame, outcome: str) -> pd.DataFrame:
    absent = [column for column in REQUIRED if column not in derived.columns]
    if absent:
        raise DataError(
            f"derived frame: column(s) {absent} are missing; the panel models need "
            f"{list(REQUIRED)}"
        )
    columns = [*REQUIRED, *(["therapist_id"] if "therapist_id" in derived.columns else [])]
    rows = derived.loc[derived["outcome"] == outcome, columns]
    if rows.empty:
        known = sorted(map(str, derived["outcome"].dropna().unique()))
        raise DataError(
            f"derived frame, column 'outcome': no rows for outcome {outcome!r} (found {known})"
        )
    session = pd.to_numeric(rows["session"], errors="coerce")
    bad = session.isna() | (session != np.floor(session))
    if bad.any():
        raise DataError(
            f"derived frame, column 'session' (outcome {outcome!r}): {int(bad.sum())} row(s) "
            f"are not whole session numbers (first at row {rows.index[bad.to_numpy()][0]})"
        )
    no_client = rows["client_id"].isna()
    if no_client.any():
        raise DataError(
            f"derived frame, column 'client_id' (outcome {outcome!r}): {int(no_client.sum())} "
            f"row(s) have no client id (first at row {rows.index[no_client.to_numpy()][0]})"
        )
    rows = rows.assign(session=session.astype("int64"),
                       client_id=rows["client_id"].astype(str))
    for column in ("alliance_score", "symptom_score"):
        try:
            rows[column] = pd.to_numeric(rows[column]).astype(float)
        except (TypeError, ValueError):
            raise DataError(
                f"derived frame, column {column!r} (outcome {outcome!r}): values are not numbers"
            ) from None
    return rows


def _observed_sessions(derived: pd.DataFrame, outcome: str) -> pd.DataFrame:
    rows = _rows(derived, outcome)
    return rows.loc[rows["alliance_score"].notna() | rows["symptom_score"].notna()]


def wide_panel(derived: pd.DataFrame, outcome: str, choice: WaveChoice
               ) -> tuple[pd.DataFrame, dict]:
    """The wide alliance-symptom panel of one outcome over the chosen waves.

    Parameters
    ----------
    derived : DataFrame
        As for :func:`choose_waves` (``therapist_id`` is carried over when present).
    outcome : str
        The outcome.
    choice : WaveChoice
        From :func:`choose_waves` on the same frame.

    Returns
    -------
    (DataFrame, dict)
        The panel: one row per client with a score in at least one wave, sorted by
        ``client_id``; columns ``client_id``, ``therapist_id`` (when the derived frame has it:
        the client's therapist at their first wave with a score, for cluster-robust SEs),
        ``a1..aK``, ``y1..yK`` (float; NaN where the session or the score is missing). The
        counts: ``clients`` (clients of the outcome), ``clients_with_data``,
        ``clients_2plus_waves``, ``clients_by_waves``, ``alliance_per_wave``,
        ``symptoms_per_wave``, ``sessions`` (K), ``outcome`` and ``waves`` (the choice,
        :meth:`WaveChoice.as_dict`).

    Raises
    ------
    DataError
        A malformed frame (see :func:`choose_waves`) or two rows for one client and session.

    Examples
    --------
    >>> frame = pd.DataFrame({"outcome": "phq9", "client_id": ["a"] * 3 + ["b"] * 2,
    ...                       "therapist_id": ["t1"] * 5, "session": [1, 2, 3, 1, 2],
    ...                       "alliance_score": [5.0, 5.5, 6.0, 4.0, None],
    ...                       "symptom_score": [14.0, 12.0, 9.0, 18.0, 17.0]})
    >>> choice = choose_waves(frame, "phq9", max_waves=2)
    >>> panel, counts = wide_panel(frame, "phq9", choice)
    >>> panel
      client_id therapist_id   a1   a2    y1    y2
    0         a           t1  5.0  5.5  14.0  12.0
    1         b           t1  4.0  NaN  18.0  17.0
    >>> counts["clients_2plus_waves"], counts["alliance_per_wave"]
    (2, {1: 2, 2: 1})
    """
    rows = _rows(derived, outcome)
    k = choice.n_waves
    n_clients = int(rows["client_id"].nunique())
    observed = rows.loc[rows["alliance_score"].notna() | rows["symptom_score"].notna()]
    if choice.origin == "study":
        start = pd.Series(choice.first_session if choice.first_session is not None else 1,
                          index=rows.index)
    else:
        first = observed.groupby("client_id")["session"].min()
        start = rows["client_id"].map(first)
    wave = rows["session"] - start + 1  # NaN for clients without any score
    rows = rows.assign(_wave=wave).loc[wave.between(1, k)]
    rows = rows.assign(_wave=rows["_wave"].astype("int64"))
    duplicated = rows.duplicated(["client_id", "session"], keep=False)
    if duplicated.any():
        raise DataError(
            f"derived frame (outcome {outcome!r}): {int(duplicated.sum())} rows share a client and "
            f"session (first at row {rows.index[duplicated.to_numpy()][0]}); the panel needs one "
            "row per client and session"
        )
    clients = np.array(sorted(set(rows["client_id"])), dtype=object)
    client_pos = pd.Index(clients).get_indexer(rows["client_id"])
    wave_pos = rows["_wave"].to_numpy() - 1
    alliance = np.full((len(clients), k), np.nan)
    symptoms = np.full((len(clients), k), np.nan)
    alliance[client_pos, wave_pos] = rows["alliance_score"].to_numpy(dtype=float)
    symptoms[client_pos, wave_pos] = rows["symptom_score"].to_numpy(dtype=float)
    has_data = ~(np.isnan(alliance).all(axis=1) & np.isnan(symptoms).all(axis=1))

    panel = pd.DataFrame({"client_id": pd.array(clients[has_data], dtype="string")})
    if "therapist_id" in rows.columns:
        scored = rows.loc[rows["alliance_score"].notna() | rows["symptom_score"].notna()]
        therapist = scored.sort_values(["client_id", "_wave"], kind="stable").groupby(
            "client_id")["therapist_id"].first()
        mapped = panel["client_id"].astype(str).map(therapist)
        panel["therapist_id"] = pd.array(
            [None if pd.isna(value) else str(value) for value in mapped], dtype="string")
    for t in range(k):
        panel[f"a{t + 1}"] = alliance[has_data, t]
    for t in range(k):
        panel[f"y{t + 1}"] = symptoms[has_data, t]
    counts = {"outcome": str(outcome), "sessions": k, "clients": n_clients,
              **wave_counts(panel, k), "waves": choice.as_dict()}
    return panel, counts


def wave_counts(panel: pd.DataFrame, waves: int) -> dict:
    """Clients with data, with two or more waves, by number of waves, and per wave.

    Parameters
    ----------
    panel : DataFrame
        A wide panel (``a1..aK``, ``y1..yK``; NaN for a missing score).
    waves : int
        K, the number of waves.

    Returns
    -------
    dict
        ``clients_with_data``, ``clients_2plus_waves``, ``clients_by_waves`` (number of waves ->
        clients), ``alliance_per_wave`` and ``symptoms_per_wave`` (wave -> clients with a score).

    Examples
    --------
    >>> panel = pd.DataFrame({"a1": [5.0, 4.0, np.nan], "a2": [5.5, np.nan, np.nan],
    ...                       "y1": [12.0, 15.0, np.nan], "y2": [10.0, np.nan, 9.0]})
    >>> wave_counts(panel, 2)
    {'clients_with_data': 3, 'clients_2plus_waves': 1, 'clients_by_waves': {0: 0, 1: 2, 2: 1},
     'alliance_per_wave': {1: 2, 2: 1}, 'symptoms_per_wave': {1: 2, 2: 2}}
    """
    alliance = panel[[f"a{t}" for t in range(1, waves + 1)]].notna().to_numpy()
    symptoms = panel[[f"y{t}" for t in range(1, waves + 1)]].notna().to_numpy()
    if waves == 0:
        alliance = symptoms = np.zeros((len(panel), 0), dtype=bool)
    waves_per_client = (alliance | symptoms).sum(axis=1)
    by_waves = np.bincount(waves_per_client, minlength=waves + 1)
    return {
        "clients_with_data": int((waves_per_client > 0).sum()),
        "clients_2plus_waves": int((waves_per_client >= 2).sum()),
        "clients_by_waves": {k: int(by_waves[k]) for k in range(waves + 1)},
        "alliance_per_wave": {t + 1: int(alliance[:, t].sum()) for t in range(waves)},
        "symptoms_per_wave": {t + 1: int(symptoms[:, t].sum()) for t in range(waves)},
    }


__all__ = [
    "DEFAULT_MAX_WAVES",
    "DEFAULT_MIN_SHARE",
    "DEFAULT_ORIGIN",
    "ORIGINS",
    "WaveChoice",
    "choose_waves",
    "wave_counts",
    "wide_panel",
]
