# lme4 on tests/fixtures/formats/sleepstudy_missing_codes.csv read with R's own missing-code
# option (na.strings), the reference for the `data ... missing "-999", "."` fixture.
# Run from the repository root: Rscript tests/reference/scripts/missing_codes.R
library(lme4)
library(jsonlite)
d <- read.csv("tests/fixtures/formats/sleepstudy_missing_codes.csv",
              na.strings = c("NA", "-999", "."), strip.white = TRUE)
m <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), d, REML = TRUE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10)))
out <- list(
  nobs = nobs(m),
  reml_criterion = unname(REMLcrit(m)),
  fixed = as.list(fixef(m)),
  se = as.list(sqrt(diag(as.matrix(vcov(m))))),
  variances = as.data.frame(VarCorr(m))$vcov
)
write_json(out, "tests/reference/missing_codes.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
