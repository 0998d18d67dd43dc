//! The `--plot` figures of one fit: which figures (for a non-Gaussian family, Pearson residuals
//! against fitted means as lme4's `plot(glmer_fit)`, and a 0/1 outcome's binned residuals),
//! their file names (unique within a fit, by file path within a folder), and writing each whole
//! or not at all. Drawing is `report::figures`; this module must not draw or compute statistics.

use std::path::Path;

use super::vary::vary_label;
use nalgebra::DMatrix;

use crate::design::{self, Design, RandomTerm};
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::{Fit, Response};
use crate::infer::binned_residuals::binned_residuals;
use crate::infer::{self};
use crate::model::{FamilyKind, ModelSpec};
use crate::prepare::AnalysisFrame;
use crate::report::figures::{self, Caterpillar, CaterpillarEffect, ResidualPoints, ResidualScale};

/// Fitted values and residuals of every observation, one pass over the rows after the fit: for
/// a non-Gaussian family the fitted means and Pearson residuals, and a 0/1 outcome's binned
/// residuals.
fn residual_points(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    fit: &Fit,
) -> Result<figures::ResidualPoints, String> {
    let first = |d: Vec<Diagnostic>| {
        d.first()
            .map(|d| d.message.clone())
            .unwrap_or_else(|| "the observations could not be read".into())
    };
    let rows = design::observation_rows(spec, frame).map_err(first)?;
    let mismatch = "internal: the observations do not match the fit";
    let equations = spec.equations.iter().map(|e| e.outcome.clone()).collect();
    let Some(family) = super::glmm::non_gaussian(spec) else {
        let fitted = infer::fitted::fitted_values(&rows, fit).ok_or(mismatch)?;
        return Ok(figures::ResidualPoints {
            fitted: fitted.fitted,
            residual: fitted.residual,
            equation: rows.equation,
            equations,
            ..Default::default()
        });
    };
    let columns = super::glmm::family_columns(frame, &rows, family).map_err(first)?;
    let response = Response {
        kind: family.kind,
        link: family.link,
    };
    let pearson =
        infer::fitted::pearson_residuals(&rows, fit, &response, &columns).ok_or(mismatch)?;
    // Bernoulli outcomes: Pearson residuals fall on two curves; their bins' averages show a misfit.
    let binary = family.kind == FamilyKind::Binomial
        && columns
            .trials
            .as_ref()
            .is_none_or(|t| t.iter().all(|&n| n == 1.0));
    let binned = if binary {
        binned_residuals(&pearson.mean, &pearson.response_residual)
    } else {
        Vec::new()
    };
    Ok(figures::ResidualPoints {
        fitted: pearson.mean,
        residual: pearson.residual,
        equation: rows.equation,
        equations,
        scale: ResidualScale::Pearson {
            family: format!("{} ({} link)", family.kind.name(), family.link.name()),
        },
        binned,
    })
}

/// Figures by file name, each drawn as SVG text or the reason it was not.
type Drawn = Vec<(String, Result<String, String>)>;

/// Write the figures of one fit into `dir`; what could not be drawn or written comes back as
/// warnings for the report, with the residual figure's numbers when they could be computed.
pub(super) fn write_figures(
    dir: &Path,
    stem: &str,
    model: &Path,
    value: &Option<(String, f64)>,
    fitted: (&ModelSpec, Option<&AnalysisFrame>, &Design, &Fit),
    draws: &[figures::DrawFigure],
) -> (Vec<Diagnostic>, Option<ResidualPoints>) {
    if !dir.is_dir() {
        let warning = Diagnostic::warning(
            format!(
                "figures not written: `{}` is not a folder and cannot be made one",
                dir.display()
            ),
            Location::File(dir.to_path_buf()),
        );
        return (vec![warning], None);
    }
    let mut stem = stem.to_string();
    if let Some((name, x)) = value {
        stem.push_str(&format!("-{name}{x}"));
    }
    let stem = figures::file_safe(&stem);
    // The file's name, not its path: a title must fit on a projected page.
    let title = model.file_name().map_or_else(
        || model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    ) + &vary_label(value);
    let mut names = FigureNames {
        stem,
        used: Vec::new(),
    };
    let (mut svgs, points) = residual_figures(&mut names, fitted, &title);
    let (spec, _, design, fit) = fitted;
    for (k, (term, modes)) in design.random.iter().zip(&fit.random_effects).enumerate() {
        let covariances =
            (fit.random_effects_covariance.get(k)).filter(|c| c.len() == modes.nrows());
        // Two terms over one grouping factor (`(1|g) + (0+x|g)`) get distinct files.
        let name = names.unique(&format!("ranef-{}", figures::file_safe(&term.name)));
        let caterpillar = caterpillar(spec, term, modes, covariances);
        svgs.push((
            format!("{name}.svg"),
            figures::caterpillar_svg(&caterpillar, &title),
        ));
    }
    for figure in draws {
        // A file's own `direct` definition and the mediation summary's get distinct files.
        let name = names.unique(&figures::file_safe(&figure.name));
        svgs.push((format!("{name}.svg"), figures::draws_svg(figure, &title)));
    }
    (write_all(dir, svgs), points.ok())
}

/// Figure names within one fit: `{stem}-{name}`, then `-2`, `-3`, ... for a name taken.
struct FigureNames {
    stem: String,
    used: Vec<String>,
}

impl FigureNames {
    fn unique(&mut self, name: &str) -> String {
        let mut unique = format!("{}-{name}", self.stem);
        let mut k = 2;
        while self.used.contains(&unique) {
            unique = format!("{}-{name}-{k}", self.stem);
            k += 1;
        }
        self.used.push(unique.clone());
        unique
    }
}

/// Fitted values against residuals, and a 0/1 outcome's binned residuals: not drawn for a
/// random coefficient as a predictor, nor out of core (the rows are not kept).
fn residual_figures(
    names: &mut FigureNames,
    (spec, frame, design, fit): (&ModelSpec, Option<&AnalysisFrame>, &Design, &Fit),
    title: &str,
) -> (Drawn, Result<ResidualPoints, String>) {
    let file = format!("{}.svg", names.unique("residuals"));
    let points = if design.latent.is_some() {
        Err("not drawn for a random coefficient as a predictor".into())
    } else if let Some(frame) = frame {
        residual_points(spec, frame, fit)
    } else {
        Err("not drawn out of core: the rows are not kept in memory".into())
    };
    let svg = (points.as_ref())
        .map_err(Clone::clone)
        .and_then(|p| figures::residuals_svg(p, title));
    let mut svgs = vec![(file, svg)];
    if let Ok(p) = &points {
        if !p.binned.is_empty() {
            let file = format!("{}.svg", names.unique("binned-residuals"));
            svgs.push((file, figures::binned_residuals_svg(&p.binned, title)));
        }
    }
    (svgs, points)
}

/// One random term's conditional modes and their conditional SDs, per effect.
fn caterpillar(
    spec: &ModelSpec,
    term: &RandomTerm,
    modes: &DMatrix<f64>,
    covariances: Option<&Vec<DMatrix<f64>>>,
) -> Caterpillar {
    let several_equations = term.effects.iter().any(|(e, _)| *e != term.effects[0].0);
    let effect = |j: usize, (equation, effect): &(usize, String)| CaterpillarEffect {
        // A term spanning equations names each effect's outcome.
        name: if several_equations {
            let outcome = spec.equations.get(*equation).map(|q| q.outcome.as_str());
            format!("{}: {effect}", outcome.unwrap_or("?"))
        } else {
            effect.clone()
        },
        values: modes.column(j).iter().copied().collect(),
        sd: covariances.map(|c| {
            c.iter()
                .map(|v| {
                    if j < v.nrows() {
                        v[(j, j)].max(0.0).sqrt()
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        }),
    };
    Caterpillar {
        link: super::glmm::non_gaussian(spec).map(|f| f.link.name().to_string()),
        group: term.name.clone(),
        levels: term.levels.clone(),
        effects: term
            .effects
            .iter()
            .enumerate()
            .map(|(j, e)| effect(j, e))
            .collect(),
    }
}

/// Write each drawn figure; what was not drawn or not written becomes a warning.
fn write_all(dir: &Path, svgs: Drawn) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for (file, svg) in svgs {
        let path = dir.join(&file);
        match svg {
            Ok(text) => {
                if let Err(e) = write_figure(&path, &text) {
                    let message = format!("figure {} not written: {e}", path.display());
                    warnings.push(Diagnostic::warning(message, Location::File(path)));
                }
            }
            Err(why) => warnings.push(Diagnostic::warning(
                format!("figure {file} not drawn: {why}"),
                Location::None,
            )),
        }
    }
    warnings
}

/// A figure's file-name stem: the model file's stem, or in a folder run its path within the
/// folder with `-` for each separator (`lme4/sleepstudy.tandem` → `lme4-sleepstudy`).
pub(super) fn figure_stem(model: &Path, folder: Option<&Path>) -> String {
    let relative = folder
        .and_then(|f| model.strip_prefix(f).ok())
        .unwrap_or_else(|| Path::new(model.file_name().unwrap_or_default()));
    let mut parts: Vec<String> = relative
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.push(
        model
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned()),
    );
    parts.join("-")
}

/// Writes one figure whole or not at all: into a temporary file beside it, then renamed over
/// the figure of an earlier run (figures are regenerated, so they replace their namesakes). A
/// symbolic link at the figure's name is neither followed nor replaced.
fn write_figure(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err("a symbolic link is there; it is not followed or replaced".into());
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let written = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e.to_string());
    }
    Ok(())
}
