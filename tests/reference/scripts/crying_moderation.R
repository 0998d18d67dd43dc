# R's lm for models/seeds/crying_moderation.tandem (moderation of feeling understood by
# attachment insecurity among those who cried). Produces tests/reference/crying_moderation.json.
#   Rscript tests/reference/scripts/crying_moderation.R
suppressPackageStartupMessages(library(jsonlite))
d <- read.csv("models/data/synthetic/crying_survey.csv")
d <- d[d$cried == 1, ]
fit <- lm(improvement ~ 1 + felt_understood + attachment_anxiety +
            felt_understood:attachment_anxiety + attachment_avoidance +
            felt_understood:attachment_avoidance + alliance, data = d)
s <- summary(fit)$coefficients
out <- list(
  versions = list(R = paste(R.version$major, R.version$minor, sep = ".")),
  crying_moderation = list(
    term = rownames(s),
    estimate = unname(s[, "Estimate"]),
    se = unname(s[, "Std. Error"]),
    t = unname(s[, "t value"]),
    p = unname(s[, "Pr(>|t|)"]),
    df = df.residual(fit),
    nobs = nobs(fit),
    sigma = summary(fit)$sigma,
    loglik_reml = as.numeric(logLik(fit, REML = TRUE))
  )
)
writeLines(toJSON(out, digits = NA, pretty = TRUE, auto_unbox = TRUE),
           "tests/reference/crying_moderation.json")
