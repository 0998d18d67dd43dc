# lme4's optima for the convergence campaign (tests/integration/convergence.rs,
# examples/convergence_campaign.rs): writes tests/reference/campaign.json.
#
#   cargo run --release --example convergence_campaign -- write /tmp/campaign
#   Rscript tests/reference/scripts/campaign.R /tmp/campaign tests/reference/campaign.json
#
# Every case is fitted with lmer under four optimizers with tight tolerances; the best
# (highest logLik; under REML the highest REML logLik) is kept, with the spread of logLik
# across the optimizers that returned a fit. Each optimizer gets `time_limit` seconds of wall
# time per case (bobyqa with rhoend = 1e-12 and Nelder-Mead can otherwise run for minutes on
# the three-effect cases); one that runs out is listed under `failed` and left out. Cases run
# in parallel (CAMPAIGN_CORES forks, default 3). A model lme4 refuses (check.nobs.vs.nRE and the
# like) is recorded as `refused` with lme4's message. No data go into the JSON.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "campaign"
out <- if (length(args) >= 2) args[2] else "tests/reference/campaign.json"

manifest <- read.csv(file.path(dir, "manifest.csv"), stringsAsFactors = FALSE)

controls <- list(
  bobyqa = lmerControl(optimizer = "bobyqa",
                       optCtrl = list(rhoend = 1e-12, maxfun = 1e6)),
  Nelder_Mead = lmerControl(optimizer = "Nelder_Mead",
                            optCtrl = list(FtolAbs = 1e-10, FtolRel = 1e-14,
                                           XtolRel = 1e-10, maxfun = 1e5)),
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(algorithm = "NLOPT_LN_BOBYQA",
                                         xtol_abs = 1e-14, ftol_abs = 1e-14,
                                         xtol_rel = 1e-14, ftol_rel = 1e-15,
                                         maxeval = 1e5)),
  nlminbwrap = lmerControl(optimizer = "nlminbwrap",
                           optCtrl = list(eval.max = 1e4, iter.max = 1e4))
)

time_limit <- as.numeric(Sys.getenv("CAMPAIGN_TIME_LIMIT", "6")) # seconds per fit (wall); a fit that takes longer is dropped
cores <- as.integer(Sys.getenv("CAMPAIGN_CORES", "3"))

fit_case <- function(i) {
  m <- manifest[i, ]
  d <- read.csv(file.path(dir, m$csv))
  for (f in strsplit(m$factors, ";")[[1]]) d[[f]] <- factor(d[[f]])
  formula <- as.formula(m$formula)
  reml <- as.logical(m$REML)
  # The model checks (nobs vs number of random effects and the like) come first.
  refused <- tryCatch({
    lFormula(formula, data = d, REML = reml)
    NULL
  }, error = function(e) conditionMessage(e))
  if (!is.null(refused)) {
    message(sprintf("%s refused: %s", m$id, refused))
    return(list(refused = refused))
  }
  fits <- list()
  messages <- list()
  seconds <- list()
  for (name in names(controls)) {
    # A time limit per fit: an optimizer stuck far from its tolerance (Nelder-Mead or bobyqa
    # on a hard case) is dropped rather than holding up the campaign; the others still count.
    t0 <- Sys.time()
    fit <- tryCatch({
      setTimeLimit(elapsed = time_limit, transient = TRUE)
      suppressMessages(suppressWarnings(
        lmer(formula, data = d, REML = reml, control = controls[[name]])))
    }, error = function(e) {
      messages[[name]] <<- conditionMessage(e)
      NULL
    })
    setTimeLimit(elapsed = Inf)
    seconds[[name]] <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
    if (!is.null(fit)) fits[[name]] <- fit
  }
  if (length(fits) == 0) {
    return(list(refused = paste(unique(unlist(messages)), collapse = "; ")))
  }
  ll <- sapply(fits, function(f) as.numeric(logLik(f)))
  best <- names(which.max(ll))
  fit <- fits[[best]]
  conv <- fit@optinfo$conv$lme4$messages
  message(sprintf("%s %s: %s %.6f (spread %.2e) [%s s]", m$id, m$formula, best,
                  as.numeric(logLik(fit)), max(ll) - min(ll),
                  paste(sprintf("%.1f", unlist(seconds)), collapse = "/")))
  list(
    loglik = as.numeric(logLik(fit)),
    criterion = -2 * as.numeric(logLik(fit)),
    REML = reml,
    optimizer = best,
    spread = max(ll) - min(ll),
    logliks = as.list(ll),
    beta = as.list(fixef(fit)),
    theta = as.list(unname(getME(fit, "theta"))),
    sigma = sigma(fit),
    isSingular = isSingular(fit),
    convergence_messages = if (is.null(conv)) list() else as.list(conv),
    failed = if (length(messages) == 0) NULL else messages
  )
}

started <- Sys.time()
cases <- parallel::mclapply(seq_len(nrow(manifest)), fit_case, mc.cores = cores,
                            mc.preschedule = FALSE)
names(cases) <- manifest$id
elapsed <- as.numeric(difftime(Sys.time(), started, units = "secs"))

result <- list(
  generated_by = "tests/reference/scripts/campaign.R",
  R = R.version.string,
  lme4 = as.character(packageVersion("lme4")),
  optimizers = names(controls),
  seconds = round(elapsed, 1),
  time_limit = time_limit,
  cases = cases
)
write_json(result, out, auto_unbox = TRUE, digits = NA, pretty = FALSE)
refused <- sum(sapply(cases, function(x) !is.null(x$refused)))
cat(sprintf("%d cases (%d refused) in %.1f s -> %s\n", length(cases), refused, elapsed, out))
