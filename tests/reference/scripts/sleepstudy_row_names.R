# Writes lme4's sleepstudy as R's write.csv does by default: the row names as an unnamed first
# column. Run from the repository root: Rscript tests/reference/scripts/sleepstudy_row_names.R
library(lme4)
write.csv(sleepstudy, "tests/fixtures/formats/sleepstudy_row_names.csv")
