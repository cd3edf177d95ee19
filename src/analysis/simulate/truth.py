"""The truth of a simulated study (``truth.yaml``) and the command that reproduces it.

Layout: ``outcomes.<key>`` (``phq9``, ``gad7``) holds ``within``, ``between``, ``rho``,
``session_slope``, ``intercept``, ``sd_client``, ``sd_therapist``, ``sd_residual``,
``intake_mean``, ``intake_sd``, the score range and the realised share of clipped scores;
``alliance`` the alliance parameters and the centring constant (with the latent driver also
``driver``, the target ``reliability`` from the registry, the item SD it implies, the latent
centring constant, and the realised reliability and within-client attenuation); ``correlations``
the depression-anxiety correlations; ``missing`` the missing-data rates; ``invalid_rows`` the
count of each kind of invalid row; plus sizes, seed and the reproducing ``command``. The observed
driver (the default) writes exactly the keys it always wrote, so the demo data stay byte-identical.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np

from analysis.simulate.engagement import ENGAGEMENT_EFFECTS
from analysis.simulate.parameters import INVALID_RATES, MISSING_RATES, WAI_ITEM_OFFSETS

OBSERVED_MODEL = (
    "Y[i,t+1] = intercept + rho*Y[i,t] + within*A_w[i,t] + between*A_b_c[i] "
    "+ session_slope*t + u[i] + v[j] + e[i,t+1]; Y = observed score (prorated when "
    "items are missing), rounded and clipped to the score range; A = observed WAI-SR "
    "mean; A_w = A - client mean of observed A; A_b_c = client mean - mean over clients"
)
LATENT_MODEL = (
    "Y[i,t+1] = intercept + rho*Y[i,t] + within*T_w[i,t] + between*T_b_c[i] "
    "+ session_slope*t + u[i] + v[j] + e[i,t+1]; Y = observed score (prorated when "
    "items are missing), rounded and clipped to the score range; T = latent (true) alliance "
    "= level[i] + trend[i]*(t-1) + noise[i,t], measured by the WAI-SR items with error "
    "(reliability as given); T_w = T - level[i]; T_b_c = level[i] - mean level over clients"
)


def rounded(value: float) -> float:
    """Six significant digits: enough for any parameter, stable in YAML."""
    return float(f"{float(value):.6g}")


def _rounded_or_none(value: float) -> float | None:
    return rounded(value) if np.isfinite(value) else None


def build_truth(
    *,
    n_clients: int,
    n_therapists: int,
    seed: int,
    max_sessions: int,
    identifiers: bool,
    invalid_rows: bool,
    params: dict[str, float],
    effects: dict[str, float],
    alliance: dict[str, Any],
    symptoms: dict[str, dict[str, Any]],
    invalid_counts: dict[str, int],
    n_session_rows: int,
    n_outcome_rows: int,
    n_attended: int,
    reliability: float | None = None,
) -> dict[str, Any]:
    outcomes = {}
    for key, state in symptoms.items():
        names = ("within", "between", "rho", "session_slope", "intercept", "sd_client",
                 "sd_therapist", "sd_residual", "intake_mean", "intake_sd")
        entry = {name: rounded(params[f"{key}_{name}"]) for name in names}
        entry["score_range"] = [0, int(state["top"])]
        entry["clipped_share"] = rounded(state["clipped"].mean()) if n_attended else 0.0
        outcomes[key] = entry
    observed = alliance["observed"]
    latent = alliance["driver"] == "latent"
    alliance_truth = {
        "instrument": "wai_sr",
        "mean": rounded(params["alliance_mean"]),
        "sd_client": rounded(params["alliance_sd_client"]),
        "trend_mean": rounded(params["alliance_trend_mean"]),
        "trend_sd": rounded(params["alliance_trend_sd"]),
        "sd_session": rounded(params["alliance_sd_session"]),
        "sd_item": rounded(alliance["sd_item"] if latent else params["alliance_sd_item"]),
        "item_offsets": [rounded(v) for v in WAI_ITEM_OFFSETS],
        "between_centre": rounded(alliance["centre"]),
        "observed_mean": rounded(np.nanmean(observed)) if (~np.isnan(observed)).any()
        else None,
    }
    if latent:
        alliance_truth.update({
            "driver": "latent",
            "reliability": None if reliability is None else rounded(reliability),
            "latent_centre": _rounded_or_none(alliance["latent_centre"]),
            "realised_reliability": _rounded_or_none(alliance["realised_reliability"]),
            "realised_within_attenuation": _rounded_or_none(
                alliance["realised_within_attenuation"]),
        })
    return {
        "generator": "analysis.simulate",
        "model": LATENT_MODEL if latent else OBSERVED_MODEL,
        "reverse_effect": "none: symptoms have no effect on alliance in the generating model",
        "n_clients": int(n_clients),
        "n_therapists": int(n_therapists),
        "seed": int(seed),
        "max_sessions": int(max_sessions),
        "identifiers": bool(identifiers),
        "invalid_rows_added": bool(invalid_rows),
        "overrides": {key: rounded(value) for key, value in sorted(effects.items())},
        "outcomes": outcomes,
        "alliance": alliance_truth,
        "correlations": {
            name: rounded(params[f"outcome_{name}_correlation"])
            for name in ("client", "therapist", "residual", "intake")
        },
        "missing": {key: rounded(value) for key, value in MISSING_RATES.items()},
        "invalid_rates": {key: rounded(value) for key, value in INVALID_RATES.items()},
        "invalid_rows": dict(sorted(invalid_counts.items())),
        "rows": {
            "attended_sessions": int(n_attended),
            "sessions_csv": int(n_session_rows),
            "outcomes_csv": int(n_outcome_rows),
        },
    }


def command_line(truth: dict[str, Any], out_dir: Path) -> str:
    """The command that writes these files again (the CLI, or a Python call with overrides)."""
    driver = truth["alliance"].get("driver", "observed")
    engagement = truth.get("engagement")
    if truth["overrides"] or (engagement and engagement["effects"] != ENGAGEMENT_EFFECTS):
        arguments = [
            str(truth["n_clients"]),
            str(truth["n_therapists"]),
            f"seed={truth['seed']}",
            f"max_sessions={truth['max_sessions']}",
            f"identifiers={truth['identifiers']}",
            f"invalid_rows={truth['invalid_rows_added']}",
        ]
        if driver != "observed":
            arguments.append(f"alliance_driver={driver!r}")
        if "engagement" in truth:
            changed = {key: value for key, value in truth["engagement"]["effects"].items()
                       if value != ENGAGEMENT_EFFECTS[key]}
            arguments.append("engagement=True")
            if changed:
                arguments.append(f"engagement_effects={changed!r}")
        arguments += [f"{key}={value!r}" for key, value in truth["overrides"].items()]
        code = (
            "from analysis.simulate import simulate_study, write_study; "
            f"write_study(simulate_study({', '.join(arguments)}), {str(out_dir)!r})"
        )
        return f"python -c {shlex.quote(code)}"
    parts = [
        "python -m analysis.simulate",
        f"--clients {truth['n_clients']}",
        f"--therapists {truth['n_therapists']}",
        f"--seed {truth['seed']}",
        f"--out {shlex.quote(str(out_dir))}",
    ]
    if truth["max_sessions"] != 16:
        parts.append(f"--max-sessions {truth['max_sessions']}")
    if not truth["identifiers"]:
        parts.append("--no-identifiers")
    if not truth["invalid_rows_added"]:
        parts.append("--no-invalid")
    if driver != "observed":
        parts.append(f"--alliance-driver {driver}")
    if engagement:
        parts.append("--engagement")
    return " ".join(parts)
