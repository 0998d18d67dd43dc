# Exports lme4's Dyestuff2 (simulated yields whose between-batch variance is estimated as zero:
# lme4's own example of a boundary, singular fit) and prints the reference fit.
# Run from the repository root: Rscript tests/reference/scripts/dyestuff2.R
library(lme4)
write.csv(Dyestuff2, "models/data/lme4/dyestuff2.csv", row.names = FALSE)
m <- lmer(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = TRUE)
print(summary(m))
print(isSingular(m))
print(REMLcrit(m), digits = 12)
