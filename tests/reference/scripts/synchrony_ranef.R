# Conditional modes and conditional SDs of the dyads' random intercept and synchrony slope in the
# joint synchrony model (models/seeds/ot_synchrony.tandem), at the oracle's ML estimates
# (tests/reference/synchrony_joint.json), computed directly: per dyad the observations
# o = (dt rows, reduction) are o = mean + Z u + noise with Z = [1 dp; 0 b], noise variances
# (sigma^2 ..., psi), u ~ N(0, Sigma), so Var(u | o) = (Sigma^-1 + Z' R^-1 Z)^-1 and
# E(u | o) = Var(u | o) Z' R^-1 (o - mean). Produces tests/reference/synchrony_ranef.json.
#   Rscript tests/reference/scripts/synchrony_ranef.R      (R 4.2.2, jsonlite)
suppressPackageStartupMessages(library(jsonlite))
o <- fromJSON("tests/reference/synchrony_joint.json")
d <- read.csv("models/data/synthetic/ot_dyads.csv")
d$dp <- d$ot_patient_post - d$ot_patient_pre
d$dt <- d$ot_therapist_post - d$ot_therapist_pre
d$reduction <- d$hrsd_intake - d$hrsd_end
S <- matrix(c(o$sd_intercept^2, o$cor * o$sd_intercept * o$sd_sync,
              o$cor * o$sd_intercept * o$sd_sync, o$sd_sync^2), 2)
s2 <- o$residual_sd^2; psi <- o$residual_sd_level2^2
rows <- list()
for (g in sort(unique(d$dyad))) {
  x <- d[d$dyad == g & !is.na(d$dt) & !is.na(d$dp), ]
  sf <- x$social_functioning[1]; slope <- o$g10 + o$a * sf
  mean1 <- o$g00 + slope * x$dp
  Z <- cbind(1, x$dp); obs <- x$dt; mu <- mean1; r <- rep(s2, nrow(x))
  Y <- d$reduction[d$dyad == g][1]
  if (!is.na(Y)) {
    Z <- rbind(Z, c(0, o$b)); obs <- c(obs, Y)
    mu <- c(mu, o$b0 + o$b * slope + o$c_prime * sf); r <- c(r, psi)
  }
  V <- solve(solve(S) + t(Z) %*% (Z / r))
  u <- V %*% t(Z) %*% ((obs - mu) / r)
  for (k in 1:2) rows[[length(rows) + 1]] <- list(level = g, term = c("(Intercept)", "dp")[k],
    value = u[k], sd = sqrt(V[k, k]))
}
writeLines(toJSON(rows, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/synchrony_ranef.json")
