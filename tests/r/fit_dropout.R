# References for the dropout parity tests (tests/test_dropout.py).
#
# Usage:
#   Rscript fit_dropout.R hazard data.csv "<formula>" <cluster column> out.csv
#     glm(formula, family = binomial) on data.csv, with cluster-robust SEs from
#     sandwich::vcovCL(fit, cluster = ~<cluster column>) at its defaults (type "HC1",
#     cadjust = TRUE: G/(G-1) x (n-1)/(n-k)); also HC0 without the cluster adjustment
#     (se_hc0_raw), to show which factor the match depends on. Writes term, estimate, se, z, p,
#     ci_low, ci_high (Wald, as lmtest::coefci gives them for a glm), se_hc0_raw, se_model.
#     A formula with bs(session, df = k) uses splines::bs.
#   Rscript fit_dropout.R km data.csv out.csv
#     survival::survfit(Surv(time, event) ~ tertile) (conf.type "log", the default) on columns
#     time, event, tertile; writes tertile, time, n_risk, n_event, n_censor, surv, std_err (of
#     the survival: the object's std.err, which is of log S, times surv), lower, upper.
#   Rscript fit_dropout.R km_plain data.csv out.csv: the same with conf.type = "plain".
# Numbers are written with 17 significant digits.
suppressPackageStartupMessages({
  library(sandwich)
  library(survival)
  library(splines)
})
options(digits = 17)
args <- commandArgs(trailingOnly = TRUE)
mode <- args[1]
data <- read.csv(args[2], stringsAsFactors = FALSE)

if (mode == "hazard") {
  formula <- as.formula(args[3])
  cluster <- args[4]
  # Tight convergence, then one more IRLS pass from the estimate: glm keeps the weights of the
  # start of its last iteration, which vcovCL's bread and meat read, so without the second pass
  # they sit one step (about 1e-6 in the coefficients) away from the estimate.
  control <- glm.control(epsilon = 1e-12, maxit = 100)
  fit <- glm(formula, family = binomial, data = data, control = control)
  fit <- glm(formula, family = binomial, data = data, control = control, start = coef(fit))
  vc <- vcovCL(fit, cluster = as.formula(paste("~", cluster)))
  vc_raw <- vcovCL(fit, cluster = as.formula(paste("~", cluster)), type = "HC0",
                   cadjust = FALSE)
  estimate <- coef(fit)
  se <- sqrt(diag(vc))
  z <- estimate / se
  q <- qnorm(0.975)
  out <- data.frame(
    term = names(estimate), estimate = estimate, se = se, z = z, p = 2 * pnorm(-abs(z)),
    ci_low = estimate - q * se, ci_high = estimate + q * se,
    se_hc0_raw = sqrt(diag(vc_raw)), se_model = sqrt(diag(vcov(fit)))
  )
  write.csv(out, args[5], row.names = FALSE)
} else if (mode %in% c("km", "km_plain")) {
  conf <- if (mode == "km") "log" else "plain"
  fit <- survfit(Surv(time, event) ~ tertile, data = data, conf.type = conf)
  strata <- rep(sub("^tertile=", "", names(fit$strata)), fit$strata)
  out <- data.frame(
    tertile = strata, time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
    n_censor = fit$n.censor, surv = fit$surv, std_err = fit$std.err * fit$surv,
    lower = fit$lower, upper = fit$upper
  )
  write.csv(out, args[3], row.names = FALSE)
} else {
  stop("unknown mode ", mode)
}
