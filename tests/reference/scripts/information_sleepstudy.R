# Asymptotic covariance of all parameters of lme4's sleepstudy fits, on the raw scale, from
# numDeriv::hessian of the log-likelihood written out directly (per subject: V = Z Sigma Z' +
# sigma2 I). Produces tests/reference/information_sleepstudy.json.
#   Rscript tests/reference/scripts/information_sleepstudy.R
# R 4.2.2, lme4 1.1-31, numDeriv 2016.8-1.1, jsonlite.
suppressPackageStartupMessages({ library(lme4); library(numDeriv); library(jsonlite) })
d <- read.csv("models/data/lme4/sleepstudy.csv")
d$Subject <- factor(d$Subject)
X <- cbind(1, d$Days)
y <- d$Reaction
groups <- split(seq_len(nrow(d)), d$Subject)

# Sigma from (var0, cov01, var1) (correlated) or (var0, var1) (uncorrelated).
loglik <- function(beta, Sigma, s2) {
  total <- 0
  for (rows in groups) {
    Z <- cbind(1, d$Days[rows])
    V <- Z %*% Sigma %*% t(Z) + diag(s2, length(rows))
    r <- y[rows] - X[rows, ] %*% beta
    ch <- chol(V)
    total <- total - sum(log(diag(ch))) - 0.5 * length(rows) * log(2 * pi) -
      0.5 * sum(backsolve(ch, r, transpose = TRUE)^2)
  }
  total
}
# REML: the ML log-likelihood at the GLS beta plus -1/2 log|X'V^-1 X| + p/2 log(2 pi).
reml <- function(Sigma, s2) {
  XtVX <- matrix(0, 2, 2); XtVy <- c(0, 0)
  for (rows in groups) {
    Z <- cbind(1, d$Days[rows])
    Vi <- solve(Z %*% Sigma %*% t(Z) + diag(s2, length(rows)))
    XtVX <- XtVX + t(X[rows, ]) %*% Vi %*% X[rows, ]
    XtVy <- XtVy + t(X[rows, ]) %*% Vi %*% y[rows]
  }
  beta <- solve(XtVX, XtVy)
  loglik(beta, Sigma, s2) - 0.5 * as.numeric(determinant(XtVX)$modulus) + log(2 * pi)
}

corr_sigma <- function(v) matrix(c(v[1], v[2], v[2], v[3]), 2)
result <- list()

# Correlated, ML: parameters (b0, b1, var0, cov01, var1, sigma2).
m <- lmer(Reaction ~ Days + (Days | Subject), d, REML = FALSE)
vc <- VarCorr(m)$Subject
theta <- c(fixef(m), vc[1, 1], vc[2, 1], vc[2, 2], sigma(m)^2)
f <- function(v) loglik(v[1:2], corr_sigma(v[3:5]), v[6])
H <- hessian(f, theta)
result$ml <- list(
  formula = "Reaction ~ Days + (Days | Subject), ML",
  parameters = c("(Intercept)", "Days", "var(Intercept)", "cov(Intercept, Days)", "var(Days)", "residual"),
  estimate = unname(theta), logLik = f(theta), lme4_logLik = as.numeric(logLik(m)),
  covariance = unname(solve(-H)), se = unname(sqrt(diag(solve(-H)))))

# Correlated, REML: variance block from the REML log-likelihood's Hessian; beta block vcov().
m <- lmer(Reaction ~ Days + (Days | Subject), d, REML = TRUE)
vc <- VarCorr(m)$Subject
v <- c(vc[1, 1], vc[2, 1], vc[2, 2], sigma(m)^2)
g <- function(v) reml(corr_sigma(v[1:3]), v[4])
H <- hessian(g, v)
result$reml <- list(
  formula = "Reaction ~ Days + (Days | Subject), REML",
  parameters = c("(Intercept)", "Days", "var(Intercept)", "cov(Intercept, Days)", "var(Days)", "residual"),
  estimate = unname(c(fixef(m), v)), REML_logLik = g(v), lme4_logLik = as.numeric(logLik(m)),
  beta_covariance = unname(as.matrix(vcov(m))),
  variance_covariance = unname(solve(-H)),
  se = unname(c(sqrt(diag(as.matrix(vcov(m)))), sqrt(diag(solve(-H))))))

# Uncorrelated, ML: parameters (b0, b1, var0, var1, sigma2).
m <- lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), d, REML = FALSE)
vc <- VarCorr(m)
theta <- c(fixef(m), vc$Subject[1, 1], vc$Subject.1[1, 1], sigma(m)^2)
f <- function(v) loglik(v[1:2], diag(v[3:4]), v[5])
H <- hessian(f, theta)
result$uncorrelated_ml <- list(
  formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), ML",
  parameters = c("(Intercept)", "Days", "var(Intercept)", "var(Days)", "residual"),
  estimate = unname(theta), logLik = f(theta), lme4_logLik = as.numeric(logLik(m)),
  covariance = unname(solve(-H)), se = unname(sqrt(diag(solve(-H)))))

writeLines(toJSON(result, digits = I(15), auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/information_sleepstudy.json")
