//! How numbers are printed in tables: a common number of decimals per column chosen from the
//! column's values (as R's `printCoefmat`), p-values as R's `format.pval`.
//!
//! Owns only formatting; it must not round anything that is later computed with.

/// Decimals that show `digits` significant digits of the smallest non-zero magnitude in the
/// column, capped so large columns do not print noise.
pub fn column_decimals(values: &[f64], digits: i32) -> usize {
    let smallest = values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|v| v.abs())
        .fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return 0;
    }
    let magnitude = smallest.log10().floor() as i32;
    (digits - 1 - magnitude).clamp(0, 8) as usize
}

/// A column of numbers with a common number of decimals; non-finite values print as `NA`.
pub fn format_column(values: &[f64], digits: i32) -> Vec<String> {
    let decimals = column_decimals(values, digits);
    values.iter().map(|v| format_fixed(*v, decimals)).collect()
}

pub fn format_fixed(value: f64, decimals: usize) -> String {
    if value.is_finite() && value.abs() >= LARGE {
        scientific(value)
    } else if value.is_finite() {
        let text = format!("{value:.decimals$}");
        // "-0.000" reads as a sign error in a table.
        if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
            text[1..].to_string()
        } else {
            text
        }
    } else if value == f64::INFINITY {
        "Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        "NA".to_string()
    }
}

/// From here on fixed notation prints digits that are noise (and, near 1e308, a line of 300
/// characters); R switches to scientific notation too.
const LARGE: f64 = 1e15;

/// `1.2346e+20`, with R's signed two-digit exponent.
fn scientific(value: f64) -> String {
    let text = format!("{value:.4e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("+", exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// A p-value as R prints it: three significant digits, scientific below 1e-4, and `< 2e-16`
/// below machine precision.
pub fn format_p(p: f64) -> String {
    if !p.is_finite() {
        "NA".to_string()
    } else if p < 2.2e-16 {
        "< 2e-16".to_string()
    } else if p < 1e-4 {
        let text = format!("{p:.2e}");
        // Rust writes `3.26e-6`; R writes `3.26e-06`.
        match text.split_once('e') {
            Some((mantissa, exponent)) => {
                let (sign, digits) = match exponent.strip_prefix('-') {
                    Some(d) => ("-", d),
                    None => ("+", exponent),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => text,
        }
    } else {
        let decimals = (2 - p.log10().floor() as i32).max(0) as usize;
        format!("{p:.decimals$}")
    }
}

/// A single number with `digits` significant digits (fit criteria, headers).
pub fn format_significant(value: f64, digits: i32) -> String {
    if !value.is_finite() {
        return "NA".to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    if value.abs() >= LARGE {
        return scientific(value);
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_as_r_prints_them() {
        assert_eq!(format_p(3.26379027326798e-06), "3.26e-06");
        assert_eq!(format_p(1e-20), "< 2e-16");
        assert_eq!(format_p(0.446898764789281), "0.447");
        assert_eq!(format_p(0.0229478), "0.0229");
    }

    #[test]
    fn huge_and_infinite_values_stay_readable() {
        // R: format(-1e308, digits = 5) is "-1e+308"; we keep four decimals of the mantissa.
        assert_eq!(format_fixed(-1e308, 3), "-1.0000e+308");
        assert_eq!(format_fixed(123456789012345678.0, 2), "1.2346e+17");
        assert_eq!(format_fixed(999999999999999.0, 0), "999999999999999");
        assert_eq!(format_fixed(f64::NEG_INFINITY, 3), "-Inf");
        assert_eq!(format_significant(2.5e20, 5), "2.5000e+20");
    }

    #[test]
    fn columns_share_decimals() {
        assert_eq!(
            format_column(&[251.405104848484, 10.4672859595959], 5),
            vec!["251.405", "10.467"]
        );
        assert_eq!(format_fixed(-0.00001, 3), "0.000");
    }
}
