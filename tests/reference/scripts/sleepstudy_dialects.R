# Writes lme4's sleepstudy as R's write.csv2 does (semicolons, decimal commas) and as a
# tab-separated file, for the delimiter fixtures. Run from the repository root:
# Rscript tests/reference/scripts/sleepstudy_dialects.R
library(lme4)
write.csv2(sleepstudy, "tests/fixtures/formats/sleepstudy_csv2.csv", row.names = FALSE)
write.table(sleepstudy, "tests/fixtures/formats/sleepstudy.tsv", sep = "\t", row.names = FALSE,
            quote = FALSE)
