# Joint ML of the synchrony model with two predictors of the random slope, written directly
# from the likelihood (dense per-dyad multivariate normal), for tests/synchrony.rs.
#   level 1: dt = g00 + (g10 + a*w + a2*h) dp + u0 + u1 dp + e
#   level 2: Y  = b0 + b*(g10 + a*w + a2*h + u1) + cp*w + zeta
# w = social_functioning, h = hrsd_intake, Y = hrsd_intake - hrsd_end.
# Run from the repository root: Rscript tests/reference/scripts/synchrony_two_predictors.R
d <- read.csv("models/data/synthetic/ot_dyads.csv")
d$dp <- d$ot_patient_post - d$ot_patient_pre
d$dt <- d$ot_therapist_post - d$ot_therapist_pre
d$Y <- d$hrsd_intake - d$hrsd_end
groups <- split(d, factor(d$dyad, levels = unique(d$dyad)))

unpack <- function(par) {
  L <- matrix(c(par[8], par[9], 0, par[10]), 2, 2)
  list(g00 = par[1], g10 = par[2], a = par[3], a2 = par[4], b0 = par[5], b = par[6],
       cp = par[7], Sigma = L %*% t(L), sigma2 = exp(par[11]), psi = exp(par[12]))
}
negloglik <- function(par) {
  p <- unpack(par)
  total <- 0
  for (g in groups) {
    n <- nrow(g); w <- g$social_functioning[1]; h <- g$hrsd_intake[1]
    slope <- p$g10 + p$a * w + p$a2 * h
    mu <- c(p$g00 + slope * g$dp, p$b0 + p$b * slope + p$cp * w)
    Z <- cbind(1, g$dp)
    V <- matrix(0, n + 1, n + 1)
    V[1:n, 1:n] <- Z %*% p$Sigma %*% t(Z) + p$sigma2 * diag(n)
    V[1:n, n + 1] <- Z %*% p$Sigma[, 2] * p$b
    V[n + 1, 1:n] <- V[1:n, n + 1]
    V[n + 1, n + 1] <- p$b^2 * p$Sigma[2, 2] + p$psi
    R <- chol(V)
    r <- backsolve(R, c(g$dt, g$Y[1]) - mu, transpose = TRUE)
    total <- total + sum(log(diag(R))) + 0.5 * sum(r^2) + 0.5 * (n + 1) * log(2 * pi)
  }
  total
}
# A generic start (not tandem's estimates): no effects, identity-ish random effects, b = 0.
start <- c(0.2, 0.2, 0, 0, mean(d$Y), 0, 0, 0.3, 0, 0.2, log(0.2), log(var(d$Y)))
fit <- nlminb(start, negloglik, control = list(iter.max = 2000, eval.max = 4000, rel.tol = 1e-14))
fit2 <- optim(fit$par, negloglik, method = "BFGS", control = list(maxit = 1000, reltol = 1e-15))
p <- unpack(fit2$par)
out <- list(
  model = "dt ~ 1 + sync*dp + (1 + sync | dyad); sync ~ 1 + a*social_functioning + a2*hrsd_intake; reduction ~ 1 + b*sync + cp*social_functioning; ML",
  logLik = -fit2$value, g00 = p$g00, g10 = p$g10, a = p$a, a2 = p$a2, b0 = p$b0, b = p$b,
  c_prime = p$cp, var_intercept = p$Sigma[1, 1], cov = p$Sigma[1, 2], var_sync = p$Sigma[2, 2],
  residual_variance = p$sigma2, residual_variance_level2 = p$psi,
  nlminb_convergence = fit$convergence, optim_convergence = fit2$convergence
)
writeLines(jsonlite::toJSON(out, auto_unbox = TRUE, digits = 15, pretty = TRUE),
           "tests/reference/synchrony_two_predictors.json")
print(out)
