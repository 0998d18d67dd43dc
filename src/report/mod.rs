//! Reports: a fit's results rendered as text (like lme4's `summary()`), JSON (DESIGN.md's
//! contract), Markdown or LaTeX. It must not compute statistics.
