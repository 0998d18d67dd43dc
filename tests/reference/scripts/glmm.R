# lme4's glmer and R's glm for the generalized linear (mixed) models of issue 16. Writes the data
# the model files and tests read and tests/reference/glmm.json:
#   models/data/lme4/cbpp.csv, models/data/mlmRev/contraception.csv,
#   models/data/lme4/grouseticks.csv, models/data/synthetic/logistic_slope.csv
# and reads (never rewrites) models/data/synthetic/crying_survey.csv.
#   Rscript tests/reference/scripts/glmm.R          (from the repository root)
# Needs lme4, mlmRev (Debian: r-cran-mlmrev) and jsonlite.
#
# Every glmer fit uses one control, recorded in the JSON: bobyqa for both of glmer's optimization
# stages (its default is bobyqa then Nelder-Mead) with a generous evaluation budget, which gives
# the same optimum run after run. vcov() of a glmer fit is lme4's default (use.hessian = TRUE):
# the inverse of the finite-difference Hessian of the Laplace/AGQ deviance over (theta, beta)
# at the optimum, halved; "vcov_rx" is the alternative (use.hessian = FALSE), sigma^2 (R_X'R_X)^-1
# from the final PIRLS step with theta held fixed. PIRLS is run to tolPwrss = 1e-13: with glmer's
# default (1e-7) the Laplace deviance is not exact, since log|L|^2 uses the weights from before the
# last PIRLS step, and the optimum moves (cbpp: logLik -92.0265664 and SE(Intercept) 0.2312120 at
# the default against -92.0262819 and 0.2324718 at the exact Laplace optimum). Each glm uses glm.control(epsilon = 1e-14)
# so its coefficients are converged far below the 1e-8 the tests ask.
suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)
  library(jsonlite)
})

control <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)
control_text <- 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)'
glm_control <- glm.control(epsilon = 1e-14, maxit = 100)
warned <- character()

# A fit, its warnings collected (the JSON says whether any fit warned; none should).
quietly <- function(name, expr) {
  withCallingHandlers(expr, warning = function(w) {
    warned <<- c(warned, paste0(name, ": ", conditionMessage(w)))
    invokeRestart("muffleWarning")
  })
}

num <- function(x) unname(as.numeric(x))

# VarCorr as lme4 prints it: per grouping factor the SDs and the correlations (lower triangle,
# row by row: (2,1), (3,1), (3,2), ...).
var_corr <- function(fit) {
  vc <- VarCorr(fit)
  lapply(names(vc), function(g) {
    m <- vc[[g]]
    sds <- attr(m, "stddev")
    cor <- attr(m, "correlation")
    lower <- if (length(sds) > 1) cor[lower.tri(cor)] else numeric()
    list(group = g, effects = names(sds), sd = num(sds), variance = num(diag(as.matrix(m))),
         correlation = num(lower))
  })
}

# The first rows of ranef() per grouping factor, with their conditional SDs (condVar).
modes <- function(fit, first = 5) {
  re <- ranef(fit, condVar = TRUE)
  lapply(names(re), function(g) {
    r <- re[[g]]
    pv <- attr(r, "postVar")
    k <- min(first, nrow(r))
    list(group = g, levels = rownames(r)[seq_len(k)], effects = colnames(r),
         mode = lapply(seq_len(ncol(r)), function(j) num(r[seq_len(k), j])),
         cond_sd = lapply(seq_len(ncol(r)), function(j) sqrt(num(pv[j, j, seq_len(k)]))))
  })
}

glmer_summary <- function(name, fit, call_text) {
  s <- summary(fit)$coefficients
  list(
    call = call_text,
    control = control_text,
    family = family(fit)$family, link = family(fit)$link,
    nAGQ = fit@devcomp$dims[["nAGQ"]],
    method = if (fit@devcomp$dims[["nAGQ"]] == 1) "Laplace" else "adaptive Gauss-Hermite",
    nobs = nobs(fit),
    ngroups = as.list(sapply(ranef(fit), nrow)),
    loglik = num(logLik(fit)), deviance = num(deviance(fit)),
    minus2loglik = num(-2 * logLik(fit)),
    aic = AIC(fit), bic = BIC(fit), df = attr(logLik(fit), "df"),
    theta = num(getME(fit, "theta")), theta_names = names(getME(fit, "theta")),
    term = rownames(s), estimate = num(s[, "Estimate"]), se = num(s[, "Std. Error"]),
    z = num(s[, "z value"]), p = num(s[, "Pr(>|z|)"]),
    vcov = unname(as.matrix(vcov(fit))),
    vcov_source = "vcov(fit): use.hessian = TRUE (finite-difference Hessian of the deviance)",
    # lme4 warns whenever the two differ by more than 1e-4: expected, not a problem of the fit.
    vcov_rx = unname(as.matrix(suppressWarnings(vcov(fit, use.hessian = FALSE)))),
    varcorr = var_corr(fit),
    ranef = modes(fit),
    optimizer_messages = fit@optinfo$conv$lme4$messages,
    function_evaluations = fit@optinfo$feval
  )
}

glm_summary <- function(fit, call_text) {
  # vcov(glm) uses the IRLS weights of the last-but-one iterate; refitted from the converged
  # coefficients, the weights (and so the SEs) are those at the estimate itself.
  fit <- update(fit, start = coef(fit))
  s <- summary(fit)$coefficients
  stat <- if ("z value" %in% colnames(s)) "z value" else "t value"
  list(
    call = call_text, control = "glm.control(epsilon = 1e-14, maxit = 100)",
    family = family(fit)$family, link = family(fit)$link, nobs = nobs(fit),
    loglik = num(logLik(fit)), deviance = deviance(fit), null_deviance = fit$null.deviance,
    aic = AIC(fit), df_residual = fit$df.residual, iterations = fit$iter,
    term = rownames(s), estimate = num(s[, "Estimate"]), se = num(s[, "Std. Error"]),
    z = num(s[, stat]), p = num(s[, 4]), vcov = unname(vcov(fit))
  )
}

# --- data --------------------------------------------------------------------------------------
write_data <- function(d, path) write.csv(d, path, row.names = FALSE)

cbpp_data <- lme4::cbpp
write_data(cbpp_data, "models/data/lme4/cbpp.csv")

contra <- mlmRev::Contraception
contra_out <- data.frame(woman = contra$woman, district = contra$district,
                         use = as.integer(contra$use == "Y"),
                         # 0, 1, 2 and 3 for R's levels "0", "1", "2", "3+": a column of
                         # numbers with one "3+" text cell would read as spoilt numbers.
                         livch = as.integer(contra$livch) - 1L,
                         age = contra$age, urban = contra$urban)
write_data(contra_out, "models/data/mlmRev/contraception.csv")
contra_fit <- read.csv("models/data/mlmRev/contraception.csv",
                       colClasses = c(district = "factor", livch = "factor", urban = "factor"))

grouse <- lme4::grouseticks
write_data(grouse, "models/data/lme4/grouseticks.csv")

# A logistic model with a correlated random intercept and slope: 60 groups of 12 observations,
# x varying within groups; true values (-0.5, 0.8), SDs (1, 0.5), correlation 0.3.
set.seed(20261201)
groups <- 60; per <- 12
g <- rep(seq_len(groups), each = per)
x <- round(rnorm(groups * per), 4)
sds <- c(1, 0.5); rho <- 0.3
Sigma <- diag(sds) %*% matrix(c(1, rho, rho, 1), 2) %*% diag(sds)
b <- matrix(rnorm(groups * 2), groups) %*% chol(Sigma)
eta <- -0.5 + b[g, 1] + (0.8 + b[g, 2]) * x
y <- rbinom(groups * per, 1, plogis(eta))
sim <- data.frame(y = y, x = x, group = sprintf("g%02d", g))
write_data(sim, "models/data/synthetic/logistic_slope.csv")
sim <- read.csv("models/data/synthetic/logistic_slope.csv")

crying <- read.csv("models/data/synthetic/crying_survey.csv")

# --- fits --------------------------------------------------------------------------------------
cbpp_data <- read.csv("models/data/lme4/cbpp.csv", colClasses = c(herd = "factor", period = "factor"))
grouse_data <- read.csv("models/data/lme4/grouseticks.csv",
                        colClasses = c(INDEX = "factor", BROOD = "factor", YEAR = "factor",
                                       LOCATION = "factor"))

out <- list(versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                            lme4 = as.character(packageVersion("lme4")),
                            mlmRev = as.character(packageVersion("mlmRev"))),
            notes = c(
              "loglik etc. are written with 15 significant digits (jsonlite digits = 15).",
              "glmer: vcov is lme4's default (use.hessian = TRUE); vcov_rx is use.hessian = FALSE.",
              "glmer deviance() is lme4's (sum of deviance residuals + penalty), not -2 logLik; minus2loglik is -2 logLik.",
              "contraception: use is 1 for 'Y'; livch written 0, 1, 2, 3 for R's levels 0, 1, 2, 3+ (so the term livch3 is R's livch3+); urban N, Y.",
              "grouseticks: raw HEIGHT, YEAR a factor (95, 96, 97), as in issue 16 (lme4's example centres HEIGHT).",
              "grouseticks_laplace (raw HEIGHT) warns: max|grad| 0.0028 > 0.002 on the intercept and 'nearly unidentifiable: very large eigenvalue' -- a scale artefact of HEIGHT ~ 460: bobyqa with rhoend 1e-10, nloptwrap and Nelder-Mead all give logLik -890.27135349 to 1e-9 relative and fixed effects within 2e-6 relative (repeated runs of this script move its fixed effects by ~3e-6 relative too); grouseticks_centred_laplace (cHEIGHT) is the same model, cleanly converged.",
              "contraception (Laplace and nAGQ = 25) warns 'nearly unidentifiable: very large eigenvalue - Rescale variables?' (the scale of I(age^2)); no convergence warning.",
              "cbpp_agq25: lme4's nAGQ > 1 logLik/deviance/AIC of a binomial with trials is relative to the saturated model (deviance residuals); loglik_full = loglik + cbpp_saturated_loglik is on the scale of the Laplace fit and glm.",
              "The warnings array lists every warning a fit raised."))

fit <- quietly("cbpp_laplace", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                     data = cbpp_data, family = binomial, control = control))
out$cbpp_laplace <- glmer_summary("cbpp", fit,
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp)")
fit <- quietly("cbpp_agq25", glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                   data = cbpp_data, family = binomial, nAGQ = 25, control = control))
out$cbpp_agq25 <- glmer_summary("cbpp", fit,
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp, nAGQ = 25)")
# lme4's nAGQ > 1 deviance is the sum of the family's deviance residuals (relative to the
# saturated model) plus the quadrature terms, while the Laplace one is -2 logLik with the full
# binomial likelihood. For 0/1 outcomes the saturated log-likelihood is 0 and the two agree; for
# cbpp (successes out of trials) logLik(nAGQ = 25) + cbpp_saturated_loglik is the log-likelihood
# on the Laplace fit's (and glm's) scale.
out$cbpp_saturated_loglik <- sum(dbinom(cbpp_data$incidence, cbpp_data$size,
                                        cbpp_data$incidence / cbpp_data$size, log = TRUE))
out$cbpp_agq25$loglik_full <- out$cbpp_agq25$loglik + out$cbpp_saturated_loglik

f_contra <- use ~ age + I(age^2) + urban + livch + (1 | district)
fit <- quietly("contraception_laplace", glmer(f_contra, data = contra_fit, family = binomial,
                                              control = control))
out$contraception_laplace <- glmer_summary("contraception", fit,
  "glmer(use ~ age + I(age^2) + urban + livch + (1 | district), family = binomial, data = Contraception)")
fit <- quietly("contraception_agq25", glmer(f_contra, data = contra_fit, family = binomial,
                                            nAGQ = 25, control = control))
out$contraception_agq25 <- glmer_summary("contraception", fit,
  "glmer(use ~ age + I(age^2) + urban + livch + (1 | district), family = binomial, data = Contraception, nAGQ = 25)")

fit <- quietly("grouseticks_laplace",
               glmer(TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION),
                     data = grouse_data, family = poisson, control = control))
out$grouseticks_laplace <- glmer_summary("grouseticks", fit,
  "glmer(TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), family = poisson, data = grouseticks)")

# The same model with lme4's example's centred height (cHEIGHT = HEIGHT - mean(HEIGHT)): the same
# likelihood, and an optimum the gradient check does not question.
fit <- quietly("grouseticks_centred_laplace",
               glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION),
                     data = grouse_data, family = poisson, control = control))
out$grouseticks_centred_laplace <- glmer_summary("grouseticks", fit,
  "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), family = poisson, data = grouseticks)")

# The raw parametrizations of Contraception (I(age^2), values to ~1000) and grouseticks (HEIGHT
# ~ 460) are badly scaled: lme4 warns "nearly unidentifiable", bobyqa stops at slightly
# different points run to run (Contraception nAGQ = 25 intercept -1.03527 or -1.03540, against
# -1.03542 by Nelder-Mead and by the rescaled model) and the finite-difference Hessian loses
# digits (the raw grouseticks intercept SE 1.59844 against 1.59925 from the centred fit of the
# same model). The numbers the tests hold, `estimate_wellscaled` and `se_wellscaled`, are those
# of the same model fitted in a well-scaled parametrization, mapped back exactly (linear in beta),
# with bobyqa run to rhoend = 1e-12 (its default stops ~1e-8 in logLik short on Contraception's
# flat nAGQ = 25 optimum, the age coefficient 1.6e-4 off the best point R finds).
control_tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-12),
                              tolPwrss = 1e-13)
wellscaled <- function(entry, fit, A) {
  b <- drop(A %*% fixef(fit)); V <- A %*% as.matrix(vcov(fit)) %*% t(A)
  entry$estimate_wellscaled <- num(b); entry$se_wellscaled <- num(sqrt(diag(V)))
  entry$loglik_wellscaled <- num(logLik(fit))
  entry$wellscaled_note <- paste("the same model fitted well scaled (bobyqa, rhoend = 1e-12),",
                                 "beta and vcov mapped back to this parametrization")
  entry
}
m_h <- mean(grouse_data$HEIGHT)
A <- diag(4); A[1, 4] <- -m_h   # (Intercept)_raw = (Intercept)_c - mean(HEIGHT) * HEIGHT
out$grouseticks_laplace <- wellscaled(out$grouseticks_laplace,
  glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION),
        data = grouse_data, family = poisson, control = control_tight), A)
m_a2 <- mean(contra_fit$age^2)
contra_fit$age2s <- (contra_fit$age^2 - m_a2) / 100
f_scaled <- use ~ age + age2s + urban + livch + (1 | district)
A <- diag(7); A[1, 3] <- -m_a2 / 100; A[3, 3] <- 1 / 100
for (n in c(1, 25)) {
  key <- if (n == 1) "contraception_laplace" else "contraception_agq25"
  out[[key]] <- wellscaled(out[[key]], glmer(f_scaled, data = contra_fit, family = binomial,
                                             nAGQ = n, control = control_tight), A)
}

fit <- quietly("logistic_slope_laplace", glmer(y ~ x + (x | group), data = sim,
                                               family = binomial, control = control))
out$logistic_slope_laplace <- glmer_summary("logistic_slope", fit,
  "glmer(y ~ x + (x | group), family = binomial, data = logistic_slope)")

# glm: the same models without random terms, other links, trials, an offset.
out$contraception_glm <- glm_summary(
  quietly("contraception_glm", glm(use ~ age + I(age^2) + urban + livch, family = binomial,
                                   data = contra_fit, control = glm_control)),
  "glm(use ~ age + I(age^2) + urban + livch, family = binomial, data = Contraception)")
out$contraception_probit_glm <- glm_summary(
  quietly("contraception_probit_glm", glm(use ~ age + I(age^2) + urban + livch,
                                          family = binomial(link = "probit"), data = contra_fit,
                                          control = glm_control)),
  "glm(use ~ age + I(age^2) + urban + livch, family = binomial(link = probit), data = Contraception)")
out$contraception_cloglog_glm <- glm_summary(
  quietly("contraception_cloglog_glm", glm(use ~ age + I(age^2) + urban + livch,
                                           family = binomial(link = "cloglog"), data = contra_fit,
                                           control = glm_control)),
  "glm(use ~ age + I(age^2) + urban + livch, family = binomial(link = cloglog), data = Contraception)")
out$cbpp_glm <- glm_summary(
  quietly("cbpp_glm", glm(cbind(incidence, size - incidence) ~ period, family = binomial,
                          data = cbpp_data, control = glm_control)),
  "glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cbpp)")
out$cbpp_probit_glm <- glm_summary(
  quietly("cbpp_probit_glm", glm(cbind(incidence, size - incidence) ~ period,
                                 family = binomial(link = "probit"), data = cbpp_data,
                                 control = glm_control)),
  "glm(cbind(incidence, size - incidence) ~ period, family = binomial(link = probit), data = cbpp)")
out$cbpp_poisson_offset_glm <- glm_summary(
  quietly("cbpp_poisson_offset_glm", glm(incidence ~ period + offset(log(size)), family = poisson,
                                         data = cbpp_data, control = glm_control)),
  "glm(incidence ~ period + offset(log(size)), family = poisson, data = cbpp)")
out$grouseticks_glm <- glm_summary(
  quietly("grouseticks_glm", glm(TICKS ~ YEAR + HEIGHT, family = poisson, data = grouse_data,
                                 control = glm_control)),
  "glm(TICKS ~ YEAR + HEIGHT, family = poisson, data = grouseticks)")
out$crying_who_cried_glm <- glm_summary(
  quietly("crying_who_cried_glm",
          glm(cried ~ alliance + attachment_anxiety + attachment_avoidance, family = binomial,
              data = crying, control = glm_control)),
  "glm(cried ~ alliance + attachment_anxiety + attachment_avoidance, family = binomial, data = crying_survey)")

out$warnings <- warned
if (length(warned) > 0) message("warnings:\n", paste(warned, collapse = "\n"))
writeLines(toJSON(out, digits = I(15), pretty = TRUE, auto_unbox = TRUE),
           "tests/reference/glmm.json")
