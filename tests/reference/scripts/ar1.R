# nlme references for AR(1) residuals (issue 16, item 3): corAR1 within a series, by position
# among the rows used, with and without random effects.
# Run from the repository root: Rscript tests/reference/scripts/ar1.R
# Writes models/data/nlme/ovary.csv, models/data/synthetic/ar1_slope.csv and
# tests/reference/ar1.json.
suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-10,
                   msTol = 1e-12, returnObject = FALSE)
gctrl <- glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12)

# Ovary as a plain table: Mare as its number, rows in nlme's order (by mare, by time).
ovary <- data.frame(Mare = as.integer(as.character(Ovary$Mare)), Time = Ovary$Time,
                    follicles = Ovary$follicles)
write.csv(ovary, "models/data/nlme/ovary.csv", row.names = FALSE)

# A simulated series model: 40 subjects of 12 to 30 occasions, a correlated random intercept
# and slope of x, AR(1) residuals with phi = 0.6 within subject, and 10 rows whose x is missing
# (dropped, so positions close over the gap, as nlme's na.omit does).
set.seed(20261201)
subjects <- 40
lens <- sample(12:30, subjects, replace = TRUE)
rows <- do.call(rbind, lapply(seq_len(subjects), function(i) {
  n <- lens[i]
  b <- MASS::mvrnorm(1, c(0, 0), matrix(c(1, 0.3, 0.3, 0.25), 2))
  x <- round(rnorm(n), 4)
  e <- as.numeric(arima.sim(list(ar = 0.6), n, sd = 0.8))
  data.frame(id = i, t = seq_len(n), x = x,
             y = round(2 + 0.5 * x + b[1] + b[2] * x + e, 4))
}))
rows$x[sample(nrow(rows), 10)] <- NA
write.csv(rows, "models/data/synthetic/ar1_slope.csv", row.names = FALSE, na = "")

lme_summary <- function(m) {
  tt <- summary(m)$tTable
  # The random effects' covariance to full precision (VarCorr prints rounded text).
  v <- as.matrix(m$modelStruct$reStruct[[1]]) * m$sigma^2
  list(
    method = m$method,
    logLik = as.numeric(logLik(m)),
    phi = as.numeric(coef(m$modelStruct$corStruct, unconstrained = FALSE)),
    sigma = m$sigma,
    fixed = lapply(seq_len(nrow(tt)), function(i) list(
      term = rownames(tt)[i], estimate = tt[i, "Value"], se = tt[i, "Std.Error"])),
    random_sd = as.list(setNames(sqrt(diag(v)), rownames(v))),
    random_cor = if (nrow(v) > 1 && v[1, 2] != 0) cov2cor(v)[1, 2] else NULL,
    nobs = m$dims$N, ngroups = as.numeric(m$dims$ngrps[1]))
}
gls_summary <- function(m) {
  tt <- summary(m)$tTable
  list(
    method = m$method,
    logLik = as.numeric(logLik(m)),
    phi = as.numeric(coef(m$modelStruct$corStruct, unconstrained = FALSE)),
    sigma = m$sigma,
    fixed = lapply(seq_len(nrow(tt)), function(i) list(
      term = rownames(tt)[i], estimate = tt[i, "Value"], se = tt[i, "Std.Error"])),
    nobs = m$dims$N)
}

f <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
ovary_fit <- function(method) lme(f, data = Ovary, random = pdDiag(~ sin(2 * pi * Time)),
                                  correlation = corAR1(), method = method, control = ctrl)
ovary_gls <- function(method) gls(f, data = Ovary, correlation = corAR1(form = ~ 1 | Mare),
                                  method = method, control = gctrl)
ovary_iid <- lme(f, data = Ovary, random = pdDiag(~ sin(2 * pi * Time)), method = "REML",
                 control = ctrl)
slope_fit <- lme(y ~ x, data = rows, random = ~ 1 + x | id, correlation = corAR1(form = ~ 1 | id),
                 method = "REML", na.action = na.omit, control = ctrl)
slope_ml <- update(slope_fit, method = "ML")

out <- list(
  ovary_ar1_reml = c(list(call = paste("lme(follicles ~ sin(2*pi*Time) + cos(2*pi*Time), Ovary,",
    "random = pdDiag(~ sin(2*pi*Time)), correlation = corAR1(), method = 'REML')")),
    lme_summary(ovary_fit("REML"))),
  ovary_ar1_ml = c(list(call = "the same, method = 'ML'"), lme_summary(ovary_fit("ML"))),
  ovary_iid_reml = c(list(call = "the same without correlation, REML"),
                     list(logLik = as.numeric(logLik(ovary_iid)))),
  ovary_gls_reml = c(list(call = paste("gls(follicles ~ sin(2*pi*Time) + cos(2*pi*Time), Ovary,",
    "correlation = corAR1(form = ~ 1 | Mare), method = 'REML')")), gls_summary(ovary_gls("REML"))),
  ovary_gls_ml = c(list(call = "the same, method = 'ML'"), gls_summary(ovary_gls("ML"))),
  ar1_slope_reml = c(list(call = paste("lme(y ~ x, ar1_slope, random = ~ 1 + x | id,",
    "correlation = corAR1(form = ~ 1 | id), method = 'REML', na.action = na.omit)")),
    lme_summary(slope_fit)),
  ar1_slope_ml = c(list(call = "the same, method = 'ML'"), lme_summary(slope_ml)),
  versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
write_json(out, "tests/reference/ar1.json", auto_unbox = TRUE, digits = NA, pretty = TRUE,
           null = "null")
print(summary(ovary_fit("REML")))
print(summary(slope_fit))
