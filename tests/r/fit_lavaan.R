# Fit RI-CLPMs with lavaan for the parity test of the Python fit (tests/test_riclpm.py).
#
# Usage: Rscript fit_lavaan.R jobs.csv out_dir
# jobs.csv has columns id, data (path of a CSV holding the wide panel a1..aK, y1..yK; empty
# cells are missing waves) and model (path of the model text written by
# analysis.models.panel.riclpm.riclpm_description, lavaan syntax). Equality constraints come from
# the model text's labels: the lagged paths equal over waves (ar_a, ar_y, cl_ay, cl_ya) and, with
# equal_innovations, the innovation variances and covariance equal over waves (iv_a, iv_y, ic_ay).
#
# Each model is fitted by full-information ML (missing = "ml", estimator = "ML") with a saturated
# mean structure (free intercepts of the observed scores, latent means 0), as in Mulder & Hamaker
# (2021). Standard errors come from the observed information matrix, the Hessian of the
# log-likelihood (information = "observed", observed.information = "hessian"): lavaan's default
# under missing = "ml", spelled out here because the Python side matches exactly that.
#
# For each job, writes <out_dir>/<id>_paths.csv (lhs, op, rhs, label, est, se, z, pvalue,
# std_all: standardizedSolution type "std.all") and <id>_fit.csv (one row: converged,
# iterations, npar, ntotal, logl, chisq, df, pvalue, baseline_chisq, baseline_df, cfi, tli,
# rmsea, srmr, aic, bic, seconds). Numbers are written with 17 significant digits.
suppressPackageStartupMessages(library(lavaan))

args <- commandArgs(trailingOnly = TRUE)
jobs <- read.csv(args[1], stringsAsFactors = FALSE)
out_dir <- args[2]
options(digits = 17)

for (i in seq_len(nrow(jobs))) {
  job <- jobs[i, ]
  data <- read.csv(job$data)
  model <- paste(readLines(job$model, warn = FALSE), collapse = "\n")
  seconds <- system.time(
    fit <- lavaan(model, data = data, missing = "ml", estimator = "ML",
                  meanstructure = TRUE, int.ov.free = TRUE, int.lv.free = FALSE,
                  information = "observed", observed.information = "hessian")
  )[["elapsed"]]

  estimates <- parameterEstimates(fit, ci = FALSE, remove.nonfree = FALSE)
  if (is.null(estimates$label)) estimates$label <- ""
  standard <- standardizedSolution(fit, type = "std.all", se = FALSE, zstat = FALSE,
                                   pvalue = FALSE, ci = FALSE, remove.def = FALSE)
  paths <- data.frame(
    lhs = estimates$lhs, op = estimates$op, rhs = estimates$rhs, label = estimates$label,
    est = estimates$est, se = estimates$se, z = estimates$z, pvalue = estimates$pvalue,
    std_all = standard$est.std
  )
  write.csv(paths, file.path(out_dir, paste0(job$id, "_paths.csv")), row.names = FALSE)

  measures <- fitMeasures(fit, c("npar", "ntotal", "logl", "chisq", "df", "pvalue",
                                 "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea",
                                 "srmr", "aic", "bic"))
  fit_row <- data.frame(
    converged = lavInspect(fit, "converged"),
    iterations = lavInspect(fit, "iterations"),
    as.list(measures),
    seconds = seconds
  )
  names(fit_row) <- gsub(".", "_", names(fit_row), fixed = TRUE)
  write.csv(fit_row, file.path(out_dir, paste0(job$id, "_fit.csv")), row.names = FALSE)
}
