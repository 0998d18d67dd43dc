# lme4/lmerTest reference for models/seeds/facial_dynamics.tandem at span = 1: the library's
# facial model with alliance grand-mean centred over the rows kept (issue 13, item 1).
# Run from the repository root: Rscript tests/reference/scripts/facial_centred.R
# Writes tests/reference/facial_centred.json.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})
d <- read.csv("models/data/synthetic/facial.csv")
d <- d[order(d$session, d$second), ]
lag_within <- function(x, g, k) ave(x, g, FUN = function(v) c(rep(NA, k), head(v, -k)))
d$t_lag <- lag_within(d$therapist_expr, d$session, 1)
d$p_lag <- lag_within(d$patient_expr, d$session, 1)
d <- d[complete.cases(d$t_lag, d$p_lag), ]
d$alliance_c <- d$alliance - mean(d$alliance)
# lme4's default optimizer (nloptwrap), as for the uncentred reference in reference.json. With
# bobyqa lme4 stops at a boundary point 0.34 log-likelihood units below (−131809.3935): the fit
# is singular, and the centred and uncentred models have the same REML optimum (−131809.0540),
# since centring a fixed-effect column does not change the REML likelihood.
m <- lmer(therapist_expr ~ (t_lag + p_lag) * alliance_c + (1 + t_lag + p_lag | patient) +
            (1 + t_lag + p_lag | session), data = d, REML = TRUE)
co <- summary(m)$coefficients
fixed <- lapply(seq_len(nrow(co)), function(i) list(
  term = rownames(co)[i], estimate = co[i, "Estimate"], se = co[i, "Std. Error"],
  df = co[i, "df"], t = co[i, "t value"], p = co[i, "Pr(>|t|)"]))
out <- list(
  facial_therapist_lag1_centred_reml = list(
    data = "facial.csv",
    formula = paste("therapist_expr ~ (t_lag + p_lag) * alliance_c + (1 + t_lag + p_lag | patient)",
                    "+ (1 + t_lag + p_lag | session); lags of 1 second within session;",
                    "alliance_c = alliance - its mean over the rows kept"),
    method = "REML", fixed = fixed, logLik = as.numeric(logLik(m)),
    REML_criterion = as.numeric(REMLcrit(m)), nobs = nobs(m), singular = isSingular(m),
    versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    lmerTest = as.character(packageVersion("lmerTest"))),
    optimizer_messages = m@optinfo$conv$lme4$messages))
write_json(out, "tests/reference/facial_centred.json", auto_unbox = TRUE, digits = NA,
           pretty = TRUE, null = "null")
print(summary(m))
