# Fit dynamic panel models with lavaan for the parity tests of analysis.models.panel.dpm
# (tests/test_dpm.py).
#
# Usage: Rscript fit_dpm_lavaan.R jobs.csv out_dir
# jobs.csv has columns id, data (CSV of the wide panel; empty cells are missing waves), model
# (path of the lavaan syntax written by analysis.models.panel.dpm.dpm_description: the model the R
# package dpm generates), cluster (a column name, or empty) and missing ("ml", or "listwise" for
# dpm's own call on complete data, as in its test of the published wage example).
#
# Each model is fitted as dpm fits it, lavaan::sem(model, data, ...), with the settings dpm's
# users pass for this analysis: missing = "ml" (full-information ML over the missing waves;
# on complete data lavaan's default "listwise" gives the same likelihood) and
# information = "observed" (SEs from the observed information, the Hessian; dpm's documented
# setting to match Stata's xtdpdml). sem's other defaults stand; no predictor is treated as fixed
# (lavNames(fit, "ov.x") is empty: every predictor covaries with the latent fixed effect), so
# fixed.x plays no role. With a cluster column the same model is refitted with
# estimator = "MLR", cluster = <column> (lavaan's cluster-robust sandwich; without cluster when
# every cluster is one row, as lavaan requires), and the robust SEs
# are written beside, together with an independent sandwich from lavaan's casewise scores
# (lavScores) summed by cluster, with the inverse observed information (vcov of the ML fit) as
# bread.
#
# For each job, writes <out_dir>/<id>_paths.csv (lhs, op, rhs, label, est, se, std_all, and with
# a cluster se_mlr, se_scores) and <id>_fit.csv (converged, npar, ntotal, logl, chisq, df,
# pvalue, baseline_chisq, baseline_df, cfi, tli, rmsea, srmr, aic, bic, seconds; with a cluster
# also nclusters). Numbers are written with 17 significant digits.
suppressPackageStartupMessages(library(lavaan))

args <- commandArgs(trailingOnly = TRUE)
jobs <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = character(0))
out_dir <- args[2]
options(digits = 17)

for (i in seq_len(nrow(jobs))) {
  job <- jobs[i, ]
  data <- read.csv(job$data)
  model <- paste(readLines(job$model, warn = FALSE), collapse = "\n")
  seconds <- system.time(
    fit <- sem(model, data = data, missing = job$missing, information = "observed")
  )[["elapsed"]]
  stopifnot(length(lavNames(fit, "ov.x")) == 0)

  estimates <- parameterEstimates(fit, ci = FALSE, remove.nonfree = FALSE)
  standard <- standardizedSolution(fit, type = "std.all", se = FALSE, zstat = FALSE,
                                   pvalue = FALSE, ci = FALSE, remove.def = FALSE)
  paths <- data.frame(lhs = estimates$lhs, op = estimates$op, rhs = estimates$rhs,
                      label = estimates$label, est = estimates$est, se = estimates$se,
                      std_all = standard$est.std)
  measures <- fitMeasures(fit, c("npar", "ntotal", "logl", "chisq", "df", "pvalue",
                                 "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea",
                                 "srmr", "aic", "bic"))
  fit_row <- data.frame(converged = lavInspect(fit, "converged"), as.list(measures),
                        seconds = seconds)

  if (!is.na(job$cluster) && nzchar(job$cluster)) {
    # lavaan refuses clusters of one observation: with one row per cluster (a client number)
    # its MLR without cluster is the same sandwich (robust.huber.white), without G / (G - 1).
    singletons <- !any(duplicated(data[[job$cluster]]))
    robust <- if (singletons) {
      sem(model, data = data, missing = "ml", estimator = "MLR")
    } else {
      sem(model, data = data, missing = "ml", estimator = "MLR", cluster = job$cluster)
    }
    robust_pe <- parameterEstimates(robust, ci = FALSE, remove.nonfree = FALSE)
    paths$se_mlr <- robust_pe$se
    # Independent sandwich: casewise scores of the ML fit, summed within clusters.
    # lavScores and vcov both with one column per distinct parameter (equal labels merged),
    # the columns of vcov named by label or lhs-op-rhs.
    scores <- lavScores(fit, remove.duplicated = TRUE)
    bread <- vcov(fit, remove.duplicated = TRUE)
    stopifnot(ncol(scores) == ncol(bread))  # lavScores has no column names: same order
    sums <- rowsum(scores, data[[job$cluster]])
    se_free <- sqrt(diag(bread %*% crossprod(sums) %*% bread))
    key <- ifelse(nzchar(paths$label), paths$label,
                  paste0(paths$lhs, paths$op, ifelse(paths$op == "~1", "1", paths$rhs)))
    key <- sub("~11$", "~1", key)
    paths$se_scores <- unname(se_free[key])
    fit_row$nclusters <- length(unique(data[[job$cluster]]))
    fit_row$mlr_information <- lavInspect(robust, "options")$information[1]
    fit_row$mlr_observed_information <- lavInspect(robust, "options")$observed.information[1]
  }
  write.csv(paths, file.path(out_dir, paste0(job$id, "_paths.csv")), row.names = FALSE)
  names(fit_row) <- gsub(".", "_", names(fit_row), fixed = TRUE)
  write.csv(fit_row, file.path(out_dir, paste0(job$id, "_fit.csv")), row.names = FALSE)
}
