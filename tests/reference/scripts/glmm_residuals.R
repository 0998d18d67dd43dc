# What lme4's plot(glmer_fit) draws, frozen for `--plot` of a GLMM: fitted() (the mean on the
# response scale, a proportion for a binomial with trials) and residuals(type = "pearson")
# (sqrt(prior weight) (y - mu) / sqrt(V(mu)), the proportion scale with the trials as weights), for
# every row of three models, and for the 0/1 one arm's binned residuals (Gelman & Hill). Writes
# tests/reference/glmm_residuals.json.
#   Rscript tests/reference/scripts/glmm_residuals.R          (from the repository root)
# Needs lme4, arm (Debian: r-cran-arm) and jsonlite. Reads the data glmm.R wrote; the control is
# glmm.R's (bobyqa, PIRLS to tolPwrss = 1e-13, see there why).
#
# Binned residuals: arm::binned.resids(fitted, y - fitted, nclass) with binnedplot's default
# nclass (floor(sqrt(n)) for n >= 100). arm's bands are 2 sd(residuals in the bin) / sqrt(n_bin);
# tandem draws the model's: 2 sqrt(sum mu (1 - mu)) / n_bin, the standard deviation of the bin's
# mean residual were the model true (given the conditional modes), written here as `band`.
suppressPackageStartupMessages({
  library(lme4)
  library(arm)
  library(jsonlite)
})

control <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)
num <- function(x) unname(as.numeric(x))
warned <- character()
quietly <- function(name, expr) {
  withCallingHandlers(expr, warning = function(w) {
    warned <<- c(warned, paste0(name, ": ", conditionMessage(w)))
    invokeRestart("muffleWarning")
  })
}

cbpp <- read.csv("models/data/lme4/cbpp.csv", colClasses = c(herd = "factor", period = "factor"))
sim <- read.csv("models/data/synthetic/logistic_slope.csv")

entry <- function(fit, call_text) {
  list(call = call_text, nobs = nobs(fit), loglik = num(logLik(fit)),
       fitted = num(fitted(fit)), pearson = num(residuals(fit, type = "pearson")))
}

out <- list(versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                            lme4 = as.character(packageVersion("lme4")),
                            arm = as.character(packageVersion("arm"))),
            control = 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)',
            notes = c("fitted and pearson are per row, in the data file's order.",
                      "binned: arm::binned.resids(fitted(fit), y - fitted(fit), floor(sqrt(n))); band = 2 sqrt(sum mu(1 - mu)) / n per bin (the model's), arm_2se = arm's 2 sd / sqrt(n)."))

fit <- quietly("cbpp_binomial", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                      data = cbpp, family = binomial, control = control))
out$cbpp_binomial <- entry(fit,
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp)")

fit <- quietly("cbpp_poisson_offset", glmer(incidence ~ period + offset(log(size)) + (1 | herd),
                                            data = cbpp, family = poisson, control = control))
out$cbpp_poisson_offset <- entry(fit,
  "glmer(incidence ~ period + offset(log(size)) + (1 | herd), family = poisson, data = cbpp)")

fit <- quietly("logistic_slope", glmer(y ~ x + (x | group), data = sim, family = binomial,
                                       control = control))
out$logistic_slope <- entry(fit, "glmer(y ~ x + (x | group), family = binomial, data = logistic_slope)")
mu <- fitted(fit)
nclass <- floor(sqrt(length(mu)))
binned <- as.data.frame(binned.resids(mu, sim$y - mu, nclass)$binned)
band <- sapply(seq_len(nrow(binned)), function(k) {
  m <- mu[mu >= binned$x.lo[k] & mu <= binned$x.hi[k]]
  2 * sqrt(sum(m * (1 - m))) / length(m)
})
# The smallest gap between the sorted fitted values either side of a break: tandem's bins are
# R's when its fitted values differ from R's by well under this.
s <- sort(mu)
at <- floor(length(mu) * (1:(nclass - 1)) / nclass)
out$logistic_slope$binned <- list(nclass = nclass, xbar = num(binned$xbar), ybar = num(binned$ybar),
                                  n = num(binned$n), x_lo = num(binned$x.lo), x_hi = num(binned$x.hi),
                                  band = num(band), arm_2se = num(binned[["2se"]]),
                                  smallest_gap_at_breaks = min(s[at + 1] - s[at]))

out$warnings <- warned
if (length(warned) > 0) message("warnings:\n", paste(warned, collapse = "\n"))
writeLines(toJSON(out, digits = I(15), pretty = TRUE, auto_unbox = TRUE),
           "tests/reference/glmm_residuals.json")
