# Writes lme4's sleepstudy with column names R users meet: a space (`Reaction Time`,
# `Days Since`) and a dot (Subject.ID), for the backquoted-names fixture; prints lme4's names
# of the coefficients (`Days Since` with backquotes, as tandem names them). The fit is
# sleepstudy's. Run from the repository root: Rscript tests/reference/scripts/sleepstudy_names.R
library(lme4)
d <- sleepstudy
names(d) <- c("Reaction Time", "Days Since", "Subject.ID")
write.csv(d, "tests/fixtures/formats/sleepstudy_names.csv", row.names = FALSE)
m <- lmer(`Reaction Time` ~ `Days Since` + (`Days Since` | Subject.ID), d)
print(fixef(m))   # (Intercept) `Days Since`: 251.40510 10.46729
print(VarCorr(m))
