# Joint ML of variants of the synchrony model, written directly from the likelihood (dense
# per-dyad multivariate normal), for tests/integration/synchrony.rs:
#   level 1: dt = g00 + (g10 + sum_k a_k x_k) dp + u0 + u1 dp + e
#   level 2: Y  = b0 + b*(g10 + sum_k a_k x_k + u1) + cp*w + zeta
# w = social_functioning, Y = hrsd_intake - hrsd_end, x_k the slope's predictors.
#   two_predictors: x = (social_functioning, hrsd_intake), (u0, u1) correlated
#   uncorrelated:   x = social_functioning, cov(u0, u1) = 0 (`(1 + sync || dyad)`)
# Run from the repository root: Rscript tests/reference/scripts/synchrony_joint_variants.R
d <- read.csv("models/data/synthetic/ot_dyads.csv")
d$dp <- d$ot_patient_post - d$ot_patient_pre
d$dt <- d$ot_therapist_post - d$ot_therapist_pre
d$Y <- d$hrsd_intake - d$hrsd_end
groups <- split(d, factor(d$dyad, levels = unique(d$dyad)))

fit_joint <- function(predictors, correlated) {
  K <- length(predictors)
  # par: g00, g10, a_1..a_K, b0, b, cp, L11, [L21], L22, log sigma2, log psi
  unpack <- function(par) {
    i <- 3 + K
    L <- if (correlated) matrix(c(par[i + 3], par[i + 4], 0, par[i + 5]), 2, 2)
         else diag(c(par[i + 3], par[i + 4]))
    j <- i + 3 + if (correlated) 3 else 2
    list(g00 = par[1], g10 = par[2], a = par[3:(2 + K)], b0 = par[i], b = par[i + 1],
         cp = par[i + 2], Sigma = L %*% t(L), sigma2 = exp(par[j]), psi = exp(par[j + 1]))
  }
  negloglik <- function(par) {
    p <- unpack(par)
    total <- 0
    for (g in groups) {
      n <- nrow(g)
      x <- sapply(predictors, function(v) g[[v]][1])
      slope <- p$g10 + sum(p$a * x)
      mu <- c(p$g00 + slope * g$dp, p$b0 + p$b * slope + p$cp * g$social_functioning[1])
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
  # A generic start (not tandem's estimates): no effects, b = 0.
  L0 <- if (correlated) c(0.3, 0, 0.2) else c(0.3, 0.2)
  start <- c(0.2, 0.2, rep(0, K), mean(d$Y), 0, 0, L0, log(0.2), log(var(d$Y)))
  fit <- nlminb(start, negloglik, control = list(iter.max = 2000, eval.max = 4000, rel.tol = 1e-14))
  fit2 <- optim(fit$par, negloglik, method = "BFGS", control = list(maxit = 1000, reltol = 1e-15))
  p <- unpack(fit2$par)
  out <- list(logLik = -fit2$value, g00 = p$g00, g10 = p$g10)
  for (k in seq_len(K)) out[[paste0("a", if (k > 1) k else "")]] <- p$a[k]
  c(out, list(b0 = p$b0, b = p$b, c_prime = p$cp, var_intercept = p$Sigma[1, 1],
              cov = p$Sigma[1, 2], var_sync = p$Sigma[2, 2], residual_variance = p$sigma2,
              residual_variance_level2 = p$psi, optim_convergence = fit2$convergence))
}

out <- list(
  two_predictors = c(list(model = "dt ~ 1 + sync*dp + (1 + sync | dyad); sync ~ 1 + a*social_functioning + a2*hrsd_intake; reduction ~ 1 + b*sync + cp*social_functioning; ML"),
                     fit_joint(c("social_functioning", "hrsd_intake"), TRUE)),
  uncorrelated = c(list(model = "dt ~ 1 + sync*dp + (1 + sync || dyad); sync ~ 1 + a*social_functioning; reduction ~ 1 + b*sync + cp*social_functioning; ML"),
                   fit_joint("social_functioning", FALSE))
)
writeLines(jsonlite::toJSON(out, auto_unbox = TRUE, digits = 15, pretty = TRUE),
           "tests/reference/synchrony_joint_variants.json")
str(out)
