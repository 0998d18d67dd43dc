# The asymptotic covariance of all parameters of an lme fit with a residual variance per class
# and AR(1) residuals within series (varIdent + corAR1, the model of ar1_classes.R), on the raw
# scale (beta, var/cov of the random effects, the classes' residual variances, phi), from
# numDeriv::hessian of the log-likelihood written out directly: per subject
# V = Z Sigma Z' + D C(phi) D, D = diag(residual SDs of the rows' classes), C_ij = phi^|i - j| by
# position among the used rows. ML: the inverse observed information of all parameters at nlme's
# ML estimates; REML: Cov(beta) = (X'V^-1 X)^-1 and the inverse Hessian of the REML
# log-likelihood in the variance parameters, at nlme's REML estimates.
# Run from the repository root (after ar1_classes.R):
#   Rscript tests/reference/scripts/ar1_information.R
# Writes tests/reference/ar1_information.json.
suppressPackageStartupMessages({ library(nlme); library(numDeriv); library(jsonlite) })
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-10,
                   msTol = 1e-12, returnObject = FALSE)
rows <- read.csv("models/data/synthetic/ar1_classes.csv")
used <- rows[!is.na(rows$x), ]
groups <- split(seq_len(nrow(used)), used$id)
X <- cbind(1, used$x)
y <- used$y
classes <- c("a", "b", "c")

# Sigma from (var0, cov01, var1); s2 the classes' residual variances in `classes` order.
V_of <- function(idx, Sigma, s2, phi) {
  Z <- X[idx, , drop = FALSE]
  n <- length(idx)
  C <- phi^abs(outer(seq_len(n), seq_len(n), "-"))
  D <- diag(sqrt(s2[match(used$class[idx], classes)]), n)
  Z %*% Sigma %*% t(Z) + D %*% C %*% D
}
loglik <- function(beta, Sigma, s2, phi) {
  total <- 0
  for (idx in groups) {
    ch <- chol(V_of(idx, Sigma, s2, phi))
    r <- y[idx] - X[idx, , drop = FALSE] %*% beta
    total <- total - sum(log(diag(ch))) - 0.5 * length(idx) * log(2 * pi) -
      0.5 * sum(backsolve(ch, r, transpose = TRUE)^2)
  }
  total
}
gls_parts <- function(Sigma, s2, phi) {
  XtVX <- matrix(0, 2, 2); XtVy <- c(0, 0)
  for (idx in groups) {
    Vi <- solve(V_of(idx, Sigma, s2, phi))
    XtVX <- XtVX + t(X[idx, ]) %*% Vi %*% X[idx, ]
    XtVy <- XtVy + t(X[idx, ]) %*% Vi %*% y[idx]
  }
  list(XtVX = XtVX, beta = solve(XtVX, XtVy))
}
# REML: the ML log-likelihood at the GLS beta plus -1/2 log|X'V^-1 X| + p/2 log(2 pi).
reml <- function(Sigma, s2, phi) {
  g <- gls_parts(Sigma, s2, phi)
  loglik(g$beta, Sigma, s2, phi) - 0.5 * as.numeric(determinant(g$XtVX)$modulus) + log(2 * pi)
}
sigma_of <- function(v) matrix(c(v[1], v[2], v[2], v[3]), 2)

fit <- function(method) lme(y ~ x, data = rows, random = ~ 1 + x | id,
                            weights = varIdent(form = ~ 1 | class),
                            correlation = corAR1(form = ~ 1 | id),
                            method = method, na.action = na.omit, control = ctrl)
# The raw variance parameters of a fit: var0, cov01, var1, the classes' variances, phi.
variance_parameters <- function(m) {
  S <- as.matrix(m$modelStruct$reStruct[[1]]) * m$sigma^2
  ratios <- coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
  c(S[1, 1], S[2, 1], S[2, 2], (m$sigma * ratios[classes])^2,
    as.numeric(coef(m$modelStruct$corStruct, unconstrained = FALSE)))
}
parameters <- c("(Intercept)", "x", "var(Intercept)", "cov(Intercept, x)", "var(x)",
                "residual a", "residual b", "residual c", "phi")
result <- list()

m <- fit("ML")
theta <- c(fixef(m), variance_parameters(m))
f <- function(v) loglik(v[1:2], sigma_of(v[3:5]), v[6:8], v[9])
H <- hessian(f, theta)
result$ml <- list(
  call = "lme(y ~ x, ar1_classes, random = ~ 1 + x | id, weights = varIdent(form = ~ 1 | class), correlation = corAR1(form = ~ 1 | id), method = 'ML')",
  parameters = parameters, estimate = unname(theta), logLik = f(theta),
  nlme_logLik = as.numeric(logLik(m)),
  covariance = unname(solve(-H)), se = unname(sqrt(diag(solve(-H)))))

m <- fit("REML")
v <- variance_parameters(m)
g <- function(v) reml(sigma_of(v[1:3]), v[4:6], v[7])
H <- hessian(g, v)
beta_cov <- solve(gls_parts(sigma_of(v[1:3]), v[4:6], v[7])$XtVX)
result$reml <- list(
  call = "the same, method = 'REML'",
  parameters = parameters, estimate = unname(c(fixef(m), v)), REML_logLik = g(v),
  nlme_logLik = as.numeric(logLik(m)),
  beta_covariance = unname(beta_cov), nlme_vcov = unname(as.matrix(vcov(m))),
  variance_covariance = unname(solve(-H)),
  se = unname(c(sqrt(diag(beta_cov)), sqrt(diag(solve(-H))))))
result$versions <- list(R = R.version.string, nlme = as.character(packageVersion("nlme")),
                        numDeriv = as.character(packageVersion("numDeriv")))

writeLines(toJSON(result, digits = I(15), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/ar1_information.json")
str(result[c("ml", "reml")][[1]][c("logLik", "nlme_logLik", "se")])
str(result$reml[c("REML_logLik", "nlme_logLik", "se")])
