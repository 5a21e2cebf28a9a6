//! Several runs of the bench, summarised per figure as min / median / max: one run on a shared
//! two-core machine is an anecdote, the spread over runs says how far a figure reproduces.

use serde::Serialize;

/// The spread of one figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    /// The middle value; with an even number of runs, the mean of the two middle ones.
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values: there is nothing to summarise.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let (min, max) = (*sorted.first()?, *sorted.last()?);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread { min, median, max })
    }
}

/// The index of the run whose value is the median (the lower of the two middle ones for an
/// even count, so it is always a run that happened); `None` for no runs.
pub fn median_run(values: &[f64]) -> Option<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    order.get(values.len().checked_sub(1)? / 2).copied()
}

/// `value` rounded to `decimals`, whole part grouped by thousands: 9200.4 -> "9,200".
pub fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    // "-0" after rounding is zero, not a negative figure.
    if value < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_an_odd_count_takes_the_middle_value() {
        assert_eq!(
            Spread::of(&[9600.0, 8100.0, 9200.0]),
            Some(Spread {
                min: 8100.0,
                median: 9200.0,
                max: 9600.0
            })
        );
    }

    #[test]
    fn spread_of_an_even_count_averages_the_two_middle_values() {
        let s = Spread::of(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 3.5, 10.0));
        let one = Spread::of(&[7.0]).unwrap();
        assert_eq!((one.min, one.median, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn the_median_run_is_a_run_that_happened() {
        assert_eq!(median_run(&[9600.0, 8100.0, 9200.0]), Some(2));
        // Two runs: the lower one, not an average no run produced.
        assert_eq!(median_run(&[9600.0, 8100.0]), Some(1));
        assert_eq!(median_run(&[5.0, 5.0, 5.0]), Some(1));
        assert_eq!(median_run(&[]), None);
    }

    #[test]
    fn figures_are_grouped_by_thousands() {
        assert_eq!(grouped(9200.4, 0), "9,200");
        assert_eq!(grouped(1_234_567.891, 2), "1,234,567.89");
        assert_eq!(grouped(999.0, 0), "999");
        assert_eq!(grouped(0.61, 2), "0.61");
        assert_eq!(grouped(-12_345.0, 0), "-12,345");
        assert_eq!(grouped(-0.001, 1), "0.0");
    }
}
