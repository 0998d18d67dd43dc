# nlme references for AR(1) residuals together with residual classes (issue 16, item 3):
# varIdent(form = ~ 1 | class) with corAR1(form = ~ 1 | id), the class varying within series, so
# consecutive rows of different classes occur. R = Λ^½ C(φ) Λ^½ per series.
# Run from the repository root: Rscript tests/reference/scripts/ar1_classes.R
# Writes models/data/synthetic/ar1_classes.csv and tests/reference/ar1_classes.json.
suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-10,
                   msTol = 1e-12, returnObject = FALSE)
gctrl <- glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12)

# 40 subjects of 12 to 30 occasions, a correlated random intercept and slope of x, each
# occasion in one of three classes drawn at random (residual SDs 0.8, 1.3, 0.5), AR(1) residuals
# with phi = 0.5 within subject (unit-variance AR(1) scaled by the class's SD), and 10 rows whose
# x is missing (dropped: positions close over the gap, as nlme's na.omit does).
set.seed(20261202)
subjects <- 40
lens <- sample(12:30, subjects, replace = TRUE)
sds <- c(a = 0.8, b = 1.3, c = 0.5)
rows <- do.call(rbind, lapply(seq_len(subjects), function(i) {
  n <- lens[i]
  b <- MASS::mvrnorm(1, c(0, 0), matrix(c(1, 0.3, 0.3, 0.25), 2))
  x <- round(rnorm(n), 4)
  class <- sample(names(sds), n, replace = TRUE)
  u <- as.numeric(arima.sim(list(ar = 0.5), n, sd = sqrt(1 - 0.5^2)))
  data.frame(id = i, t = seq_len(n), class = class, x = x,
             y = round(2 + 0.5 * x + b[1] + b[2] * x + sds[class] * u, 4))
}))
rows$x[sample(nrow(rows), 10)] <- NA
write.csv(rows, "models/data/synthetic/ar1_classes.csv", row.names = FALSE, na = "")

# The classes' residual SDs, σ times varIdent's ratios (nlme's reference class has ratio 1).
class_sds <- function(m) {
  ratios <- coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
  as.list(m$sigma * ratios)
}
common <- function(m) {
  tt <- summary(m)$tTable
  list(
    method = m$method,
    logLik = as.numeric(logLik(m)),
    phi = as.numeric(coef(m$modelStruct$corStruct, unconstrained = FALSE)),
    sigma = m$sigma,
    class_sd = class_sds(m),
    fixed = lapply(seq_len(nrow(tt)), function(i) list(
      term = rownames(tt)[i], estimate = tt[i, "Value"], se = tt[i, "Std.Error"])),
    nobs = m$dims$N)
}
lme_summary <- function(m) {
  # The random effects' covariance to full precision (VarCorr prints rounded text).
  v <- as.matrix(m$modelStruct$reStruct[[1]]) * m$sigma^2
  c(common(m), list(
    random_sd = as.list(setNames(sqrt(diag(v)), rownames(v))),
    random_cor = if (nrow(v) > 1 && v[1, 2] != 0) cov2cor(v)[1, 2] else NULL,
    ngroups = as.numeric(m$dims$ngrps[1])))
}

lme_fit <- function(method) lme(y ~ x, data = rows, random = ~ 1 + x | id,
                                weights = varIdent(form = ~ 1 | class),
                                correlation = corAR1(form = ~ 1 | id),
                                method = method, na.action = na.omit, control = ctrl)
gls_fit <- function(method) gls(y ~ x, data = rows, weights = varIdent(form = ~ 1 | class),
                                correlation = corAR1(form = ~ 1 | id),
                                method = method, na.action = na.omit, control = gctrl)
lme_reml <- lme_fit("REML")
gls_reml <- gls_fit("REML")

# How often consecutive used rows of a series are in two different classes (the pairs the
# lag-1 sums are kept for).
used <- rows[!is.na(rows$x), ]
same_series <- head(used$id, -1) == tail(used$id, -1)
mixed <- sum(same_series & head(used$class, -1) != tail(used$class, -1))

out <- list(
  lme_reml = c(list(call = paste("lme(y ~ x, ar1_classes, random = ~ 1 + x | id,",
    "weights = varIdent(form = ~ 1 | class), correlation = corAR1(form = ~ 1 | id),",
    "method = 'REML', na.action = na.omit)")), lme_summary(lme_reml)),
  lme_ml = c(list(call = "the same, method = 'ML'"), lme_summary(lme_fit("ML"))),
  gls_reml = c(list(call = paste("gls(y ~ x, ar1_classes, weights = varIdent(form = ~ 1 | class),",
    "correlation = corAR1(form = ~ 1 | id), method = 'REML', na.action = na.omit)")),
    common(gls_reml)),
  gls_ml = c(list(call = "the same, method = 'ML'"), common(gls_fit("ML"))),
  mixed_class_pairs = mixed,
  versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
write_json(out, "tests/reference/ar1_classes.json", auto_unbox = TRUE, digits = NA,
           pretty = TRUE, null = "null")
print(summary(lme_reml))
print(summary(gls_reml))
