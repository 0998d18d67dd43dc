# lme4's anova(m1, m2) for `tandem compare`: likelihood-ratio tests between nested mixed models.
# Writes tests/reference/compare.json.
#   Rscript tests/reference/scripts/compare.R      (from the repository root)
# Needs lme4 and jsonlite. Reads the data the model files read (models/data/lme4/*.csv).
#
# anova() refits REML fits by ML (lme4 1.1-31's anovaLmer: with refit = TRUE, every REML fit is
# refitted, whatever the fixed parts; "refitting model(s) with ML (instead of REML)"), orders the
# models by npar, and gives per row after the first chisq = 2 * max(0, diff(logLik)),
# Df = diff(npar), p = pchisq(chisq, Df, lower.tail = FALSE). With refit = FALSE the REML
# criteria are compared as they are. The chi-bar-square p-value of adding one random slope with
# its covariance to a random intercept (Stram & Lee 1994) is written from its formula,
# 0.5 * pchisq(x, 1, lower = FALSE) + 0.5 * pchisq(x, 2, lower = FALSE).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

sleep <- read.csv("models/data/lme4/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
cbpp <- read.csv("models/data/lme4/cbpp.csv")
cbpp$herd <- factor(cbpp$herd)
cbpp$period <- factor(cbpp$period)

table_of <- function(a) {
  rows <- lapply(seq_len(nrow(a)), function(i) list(
    model = rownames(a)[i],
    npar = a$npar[i],
    aic = a$AIC[i],
    bic = a$BIC[i],
    loglik = a$logLik[i],
    deviance = a$deviance[i],
    chisq = a$Chisq[i],  # NA (null) on the first row
    df = a$Df[i],
    p = a[["Pr(>Chisq)"]][i]
  ))
  rows
}
mixture <- function(x, q) {
  # 0.5 chi2(q) + 0.5 chi2(q + 1); chi2(0) is a point mass at 0.
  upper <- function(df) if (df == 0) as.numeric(x <= 0) else pchisq(x, df, lower.tail = FALSE)
  0.5 * upper(q) + 0.5 * upper(q + 1)
}

# 1. Random intercept vs correlated random slope (REML fits, refitted by ML).
fm0 <- lmer(Reaction ~ Days + (1 | Subject), sleep)
fm1 <- lmer(Reaction ~ Days + (Days | Subject), sleep)
a1 <- anova(fm0, fm1)
slope <- table_of(a1)
slope[[2]]$p_mixture <- mixture(a1$Chisq[2], 1)
a1n <- anova(fm0, fm1, refit = FALSE)
slope_reml <- table_of(a1n)
slope_reml[[2]]$p_mixture <- mixture(a1n$Chisq[2], 1)

# 1b. An uncorrelated random slope added to the random intercept (one variance, Df = 1): the
# mixture 0.5 chi2(0) + 0.5 chi2(1), half the naive p-value; and the correlated slope against the
# uncorrelated one (one covariance added, not on the boundary: no mixture).
fmu <- lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep)
a1u <- anova(fm0, fmu)
uncorrelated <- table_of(a1u)
uncorrelated[[2]]$p_mixture <- mixture(a1u$Chisq[2], 0)
covariance <- table_of(anova(fmu, fm1))

# 2. Different fixed parts, the same random part (refitted by ML).
fm2 <- lmer(Reaction ~ 1 + (Days | Subject), sleep)
a2 <- anova(fm1, fm2)
fixed <- table_of(a2)

# 3. A GLMM pair (Laplace, ML already): cbpp with and without period.
control <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)
gm1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp,
             control = control)
gm0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), family = binomial, data = cbpp,
             control = control)
a3 <- anova(gm1, gm0)
glmm <- table_of(a3)

out <- list(
  lme4_version = as.character(packageVersion("lme4")),
  sleepstudy_slope = list(
    calls = c("lmer(Reaction ~ Days + (1 | Subject), sleepstudy)",
              "lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"),
    anova = "anova(fm0, fm1)",
    rows = slope),
  sleepstudy_slope_no_refit = list(anova = "anova(fm0, fm1, refit = FALSE)", rows = slope_reml),
  sleepstudy_uncorrelated = list(
    calls = c("lmer(Reaction ~ Days + (1 | Subject), sleepstudy)",
              "lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleepstudy)"),
    anova = "anova(fm0, fmu)",
    rows = uncorrelated),
  sleepstudy_covariance = list(anova = "anova(fmu, fm1)", rows = covariance),
  sleepstudy_fixed = list(
    calls = c("lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
              "lmer(Reaction ~ 1 + (Days | Subject), sleepstudy)"),
    anova = "anova(fm1, fm2)",
    rows = fixed),
  cbpp = list(
    calls = c("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), binomial, cbpp)",
              "glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), binomial, cbpp)"),
    control = 'glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)',
    anova = "anova(gm1, gm0)",
    rows = glmm)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/reference/compare.json")
print(a1); print(a1n); print(a2); print(a3)
