# Average marginal effects (`ame(x)` in a definition) for issue 16: the mean over the analysis
# rows of d mu / d x on the response scale, fixed part only (random effects at zero, R's
# re.form = NA), with its delta-method SE from vcov(fit). Writes tests/reference/ame.json.
#   Rscript tests/reference/scripts/ame.R          (from the repository root)
# Needs lme4 and jsonlite; reads the CSVs the model files read (written by glmm.R).
#
# The slope of the linear predictor in x is written out by hand per model (the model matrix's
# derivative: 1 for x's own column, the other variable for an interaction), the inverse link's
# slope is R's family()$mu.eta, and the gradient of the AME in beta is a central difference
# (step 1e-6), so nothing here shares tandem's arithmetic (tandem: the design at x +- 1 and the
# exact gradient). glmer fits use glmm.R's control (tolPwrss = 1e-13); glm fits are refitted from
# their own coefficients so vcov() uses the final weights (see glmm.R).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

control <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-13)
glm_control <- glm.control(epsilon = 1e-14, maxit = 100)

# AME and its SE: X the fixed-effect rows, D their slopes in x, offset the fixed offset.
ame <- function(name, call, beta, V, X, D, linkobj, offset = 0) {
  value <- function(b) mean(linkobj$mu.eta(drop(X %*% b) + offset) * drop(D %*% b))
  h <- 1e-6
  g <- sapply(seq_along(beta), function(k) {
    e <- replace(numeric(length(beta)), k, h)
    (value(beta + e) - value(beta - e)) / (2 * h)
  })
  list(name = name, call = call, estimate = value(beta), se = sqrt(drop(t(g) %*% V %*% g)))
}

refit_glm <- function(fit) update(fit, start = coef(fit), control = glm_control)

out <- list(note = paste(
  "AME = mean(mu.eta(eta) * d eta / d x) over the analysis rows, random effects at zero;",
  "SE = sqrt(g' V g), g the central-difference gradient in beta, V = vcov(fit)."))

# Contraception (mlmRev), logistic GLMM with an age x urban interaction, Laplace.
contra <- read.csv("models/data/mlmRev/contraception.csv")
contra$urb <- as.numeric(contra$urban == "Y")
contra$livch <- factor(contra$livch)
m <- glmer(use ~ age + urb + livch + age:urb + (1 | district), family = binomial,
           data = contra, control = control)
X <- getME(m, "X")
b <- fixef(m)
V <- as.matrix(vcov(m))
call <- "glmer(use ~ age + urb + livch + age:urb + (1 | district), family = binomial, Contraception)"
D_age <- 0 * X; D_age[, "age"] <- 1; D_age[, "age:urb"] <- contra$urb
D_urb <- 0 * X; D_urb[, "urb"] <- 1; D_urb[, "age:urb"] <- contra$age
out$contraception_glmer <- list(
  loglik = as.numeric(logLik(m)),
  age = ame("age", call, b, V, X, D_age, binomial()),
  urb = ame("urb", call, b, V, X, D_urb, binomial()))

# The same fixed part by probit glm (no random term).
g <- refit_glm(glm(use ~ age + urb + livch + age:urb, family = binomial(link = "probit"),
                   data = contra, control = glm_control))
X <- model.matrix(g)
D_age <- 0 * X; D_age[, "age"] <- 1; D_age[, "age:urb"] <- contra$urb
out$contraception_probit_glm <- list(
  loglik = as.numeric(logLik(g)),
  age = ame("age", "glm(use ~ age + urb + livch + age:urb, family = binomial(link = probit))",
            coef(g), vcov(g), X, D_age, binomial(link = "probit")))

# The crying survey's logistic regression (models/seeds/crying_who_cried.tandem).
crying <- read.csv("models/data/synthetic/crying_survey.csv")
g <- refit_glm(glm(cried ~ alliance + attachment_anxiety + attachment_avoidance,
                   family = binomial, data = crying, control = glm_control))
X <- model.matrix(g)
slope_of <- function(column) { D <- 0 * X; D[, column] <- 1; D }
call <- "glm(cried ~ alliance + attachment_anxiety + attachment_avoidance, family = binomial)"
out$crying_glm <- list(
  loglik = as.numeric(logLik(g)),
  alliance = ame("alliance", call, coef(g), vcov(g), X, slope_of("alliance"), binomial()),
  attachment_anxiety = ame("attachment_anxiety", call, coef(g), vcov(g), X,
                           slope_of("attachment_anxiety"), binomial()))

# grouseticks (lme4), Poisson GLMM with three random intercepts, centred height: the AME is on
# the expected-count scale.
grouse <- read.csv("models/data/lme4/grouseticks.csv")
grouse$YEAR <- factor(grouse$YEAR)
m <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION),
           family = poisson, data = grouse, control = control)
X <- getME(m, "X")
D <- 0 * X; D[, "cHEIGHT"] <- 1
out$grouseticks_glmer <- list(
  loglik = as.numeric(logLik(m)),
  cHEIGHT = ame("cHEIGHT", "glmer(TICKS ~ YEAR + cHEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION), family = poisson)",
                fixef(m), as.matrix(vcov(m)), X, D, poisson()))


# A Poisson glm with an offset (a column of its own, log of the raw height): the effect is on
# the expected count at each row's offset, as predict(type = "response") has it.
grouse$logH <- log(grouse$HEIGHT)
g <- refit_glm(glm(TICKS ~ YEAR + cHEIGHT + offset(logH), family = poisson, data = grouse,
                   control = glm_control))
X <- model.matrix(g)
D <- 0 * X; D[, "cHEIGHT"] <- 1
out$grouseticks_offset_glm <- list(
  loglik = as.numeric(logLik(g)),
  cHEIGHT = ame("cHEIGHT", "glm(TICKS ~ YEAR + cHEIGHT + offset(log(HEIGHT)), family = poisson)",
                coef(g), vcov(g), X, D, poisson(), offset = grouse$logH))

writeLines(toJSON(out, digits = I(15), pretty = TRUE, auto_unbox = TRUE), "tests/reference/ame.json")
