# lme4's InstEval (73,421 lecture evaluations, students crossed with lecturers): exports the data
# to models/data/lme4/insteval.csv and freezes the fit of models/lme4/insteval.tandem, REML and
# ML, into tests/reference/insteval.json (the same fields as reference.json's lme4 entries, plus
# wall times and the default optimizer's result for comparison).
# Run from the project root: Rscript tests/reference/scripts/insteval.R
suppressPackageStartupMessages({ library(lme4); library(lmerTest); library(jsonlite) })

data("InstEval", package = "lme4")
d <- InstEval
# Factor columns are written as their labels (s, d, dept, service: 0/1; studage, lectage: the
# ordered factors' labels), y as the integer rating; no row names. Every label is a number, so
# no quotes (1.5 MB instead of 2.3 MB).
out_csv <- "models/data/lme4/insteval.csv"
write.csv(d, out_csv, row.names = FALSE, quote = FALSE)
stopifnot(identical(dim(read.csv(out_csv)), dim(d)))

formula <- y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

criterion <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)

summarise <- function(m, seconds, label) {
  vc <- as.data.frame(VarCorr(m))
  fixed <- summary(m)$coefficients
  rows <- lapply(seq_len(nrow(fixed)), function(i) list(
    term = rownames(fixed)[i], estimate = fixed[i, "Estimate"], se = fixed[i, "Std. Error"]))
  list(
    data = "lme4/insteval.csv",
    formula = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)",
    method = if (isREML(m)) "REML" else "ML",
    optimizer = label,
    fixed = rows,
    random = lapply(seq_len(nrow(vc)), function(i) list(
      group = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
      vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    sigma = sigma(m),
    logLik = as.numeric(logLik(m)),
    deviance = if (isREML(m)) NULL else deviance(m),
    REML_criterion = if (isREML(m)) REMLcrit(m) else NULL,
    AIC = AIC(m), BIC = BIC(m),
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    singular = isSingular(m),
    theta = unname(getME(m, "theta")),
    theta_names = names(getME(m, "theta")),
    feval = m@optinfo$feval,
    converged_messages = m@optinfo$conv$lme4$messages,
    seconds = unname(seconds[["elapsed"]])
  )
}

out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            lmerTest = as.character(packageVersion("lmerTest")),
                            machine = "2 cores, shared with other jobs; wall times are indicative"))
for (reml in c(TRUE, FALSE)) {
  key <- if (reml) "insteval_reml" else "insteval_ml"
  t_tight <- system.time(m <- lme4::lmer(formula, d, REML = reml, control = tight))
  t_default <- system.time(m0 <- lme4::lmer(formula, d, REML = reml))
  entry <- summarise(m, t_tight, "bobyqa, rhoend = 1e-12")
  entry$default_optimizer <- list(
    optimizer = m0@optinfo$optimizer,
    criterion = criterion(m0),
    theta = unname(getME(m0, "theta")),
    feval = m0@optinfo$feval,
    seconds = unname(t_default[["elapsed"]]),
    # positive: the default stops at a worse (higher) criterion than the tight bobyqa run
    criterion_minus_tight = criterion(m0) - criterion(m))
  # Satterthwaite df (lmerTest), at the tight optimum; only where they finish in a few minutes.
  if (reml) {
    setTimeLimit(elapsed = 300, transient = TRUE)
    t_df <- system.time(coefs <- tryCatch(summary(as_lmerModLmerTest(m))$coefficients,
                                          error = function(e) { message("df: ", conditionMessage(e)); NULL }))
    setTimeLimit()
    if (!is.null(coefs)) {
      for (i in seq_along(entry$fixed)) {
        term <- entry$fixed[[i]]$term
        entry$fixed[[i]]$df <- coefs[term, "df"]
        entry$fixed[[i]]$t <- coefs[term, "t value"]
        entry$fixed[[i]]$p <- coefs[term, "Pr(>|t|)"]
      }
      entry$satterthwaite_seconds <- unname(t_df[["elapsed"]])
    }
  }
  out[[key]] <- entry
  message(sprintf("%s: criterion %.10f (default %s: %.10f, %+.3g), theta %s, %.1f s (default %.1f s)",
                  key, criterion(m), m0@optinfo$optimizer, criterion(m0), criterion(m0) - criterion(m),
                  paste(format(getME(m, "theta"), digits = 10), collapse = " "),
                  t_tight[["elapsed"]], t_default[["elapsed"]]))
}
write_json(out, "tests/reference/insteval.json", auto_unbox = TRUE, digits = NA, pretty = TRUE,
           null = "null")
