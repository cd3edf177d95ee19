# Fit linear mixed models with lme4/lmerTest for the parity tests (tests/test_models_r_parity.py).
#
# Usage: Rscript fit_lmer.R jobs.csv out_dir
# jobs.csv has columns id, data (path of a CSV), formula (lme4 syntax), reml (TRUE/FALSE).
# For each job, writes <out_dir>/<id>_fixed.csv (term, estimate, se, df, t, p: Satterthwaite df
# from lmerTest), <id>_random.csv (as.data.frame(VarCorr()): grp, var1, var2, vcov, sdcor) and
# <id>_fit.csv (reml_criterion, loglik, singular, seconds_fit: lmerTest::lmer, which fits with lme4
# and prepares the Satterthwaite derivatives, seconds_summary: summary() with Satterthwaite df,
# lme4_messages: lme4's convergence and boundary messages joined by " | ", empty when none).
# Numbers are written with 17 significant digits. benchmarks/bench_models.py uses the timings.
suppressPackageStartupMessages(library(lmerTest))

args <- commandArgs(trailingOnly = TRUE)
jobs <- read.csv(args[1], stringsAsFactors = FALSE)
out_dir <- args[2]
options(digits = 17)

write_table <- function(frame, name) {
  write.csv(frame, file.path(out_dir, name), row.names = FALSE)
}

for (i in seq_len(nrow(jobs))) {
  job <- jobs[i, ]
  data <- read.csv(job$data, stringsAsFactors = FALSE)
  for (group in c("client_id", "therapist_id", "Subject")) {
    if (group %in% names(data)) data[[group]] <- factor(data[[group]])
  }
  reml <- as.logical(job$reml)
  # lme4's messages (a singular fit, a failed convergence check) are kept in the model and
  # written out, not printed
  seconds_fit <- system.time(
    model <- suppressMessages(suppressWarnings(
      lmer(as.formula(job$formula), data = data, REML = reml)
    ))
  )[["elapsed"]]
  seconds_summary <- system.time(coefficients <- summary(model)$coefficients)[["elapsed"]]
  fixed <- data.frame(
    term = rownames(coefficients),
    estimate = coefficients[, "Estimate"],
    se = coefficients[, "Std. Error"],
    df = coefficients[, "df"],
    t = coefficients[, "t value"],
    p = coefficients[, "Pr(>|t|)"]
  )
  write_table(fixed, paste0(job$id, "_fixed.csv"))
  write_table(as.data.frame(VarCorr(model)), paste0(job$id, "_random.csv"))
  fit <- data.frame(
    reml_criterion = if (reml) REMLcrit(model) else NA,
    loglik = as.numeric(logLik(model)),
    singular = isSingular(model),
    seconds_fit = seconds_fit,
    seconds_summary = seconds_summary,
    lme4_messages = paste(unlist(model@optinfo$conv$lme4$messages), collapse = " | ")
  )
  write_table(fit, paste0(job$id, "_fit.csv"))
}
