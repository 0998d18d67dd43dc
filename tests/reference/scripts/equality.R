# lavaan reference for tests/fixtures/formats/equality.tandem: lavaan's mediation data with the
# label `a` on X -> M and X -> Y (an equality constraint). ML, observed-x regressions with means.
# With the constraint the SEs depend on the information used: lavaan's default (expected) gives
# SE(a) 0.072, its observed information 0.078, and Cov(β) with the residual variances held fixed
# (tandem's fixed-effects table, lme4's vcov) 0.0749. Both lavaan versions are written.
# Run from the repository root: Rscript tests/reference/scripts/equality.R
# Writes tests/reference/equality.json.
suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})
d <- read.csv("models/data/lavaan/mediation.csv")
f <- sem("M ~ a*X\nY ~ a*X + b*M", data = d, meanstructure = TRUE)
pe <- parameterEstimates(f)
pe <- pe[pe$op %in% c("~", "~1"), c("lhs", "op", "rhs", "label", "est", "se", "z")]
fo <- sem("M ~ a*X\nY ~ a*X + b*M", data = d, meanstructure = TRUE, information = "observed")
po <- parameterEstimates(fo)
pe$se_observed <- po$se[match(paste(pe$lhs, pe$op, pe$rhs), paste(po$lhs, po$op, po$rhs))]
out <- list(equality = list(
  logLik = as.numeric(logLik(f)),
  parameters = lapply(seq_len(nrow(pe)), function(i) as.list(pe[i, ])),
  versions = list(R = R.version.string, lavaan = as.character(packageVersion("lavaan")))))
write_json(out, "tests/reference/equality.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
print(pe)
print(logLik(f))
