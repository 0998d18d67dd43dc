# Conditional modes and conditional SDs (lme4's ranef(condVar = TRUE)) for the lme4 library
# models, REML and ML, frozen into tests/reference/condvar.json.
# R 4.2.2, lme4 1.1-31, jsonlite. Run from the project root: Rscript tests/reference/scripts/condvar.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
d <- "models/data/lme4"
sleep <- read.csv(file.path(d, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
dye <- read.csv(file.path(d, "dyestuff.csv")); dye$Batch <- factor(dye$Batch)
pastes <- read.csv(file.path(d, "pastes.csv"))
pastes$batch <- factor(pastes$batch); pastes$cask <- factor(pastes$cask)
pen <- read.csv(file.path(d, "penicillin.csv"))
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)
orth <- read.csv(file.path(d, "orthodont.csv"))
orth$Subject <- factor(orth$Subject); orth$Sex <- relevel(factor(orth$Sex), "Male")
models <- list(
  sleepstudy = list(Reaction ~ Days + (Days | Subject), sleep),
  sleepstudy_uncorrelated = list(Reaction ~ Days + (Days || Subject), sleep),
  dyestuff = list(Yield ~ 1 + (1 | Batch), dye),
  pastes_nested = list(strength ~ 1 + (1 | batch/cask), pastes),
  penicillin_crossed = list(diameter ~ 1 + (1 | plate) + (1 | sample), pen),
  orthodont = list(distance ~ age * Sex + (age | Subject), orth)
)
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
for (name in names(models)) {
  for (reml in c(TRUE, FALSE)) {
    # lme4's default nloptwrap stops early on orthodont (max|grad| 0.0025; its conditional SDs
    # then differ from the optimum's by 8.5e-4 relative): freeze at a tightly converged optimum.
    m <- lmer(models[[name]][[1]], models[[name]][[2]], REML = reml,
              control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
    re <- ranef(m, condVar = TRUE)
    rows <- list()
    # lme4 names a second term on the same factor `Subject.1`; tandem's design keeps the
    # factor's name, so the test matches rows by (group, level, effect).
    for (g in names(re)) {
      modes <- re[[g]]
      pv <- attr(modes, "postVar")
      # Several terms on one factor (`||`): lme4 gives a list of arrays, one per term, whose
      # columns follow one another; flatten them to the conditional variances per column.
      if (is.list(pv)) {
        v <- matrix(NA, nrow(modes), ncol(modes)); col <- 0
        for (a in pv) for (k in seq_len(dim(a)[1])) { col <- col + 1; v[, col] <- a[k, k, ] }
      } else {
        v <- t(sapply(seq_len(nrow(modes)), function(i) diag(matrix(pv[, , i], dim(pv)[1]))))
        if (ncol(modes) == 1) v <- matrix(v, ncol = 1)
      }
      group <- sub("\\.[0-9]+$", "", g)
      for (j in seq_len(ncol(modes))) for (i in seq_len(nrow(modes))) {
        rows[[length(rows) + 1]] <- list(group = group, level = rownames(modes)[i],
          term = colnames(modes)[j], value = modes[i, j], sd = sqrt(v[i, j]))
      }
    }
    out[[paste0(name, if (reml) "_reml" else "_ml")]] <- rows
  }
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/condvar.json")
