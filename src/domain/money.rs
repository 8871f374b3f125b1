//! Money arithmetic: minor units (i64), basis points, half-up rounding and
//! largest-remainder spreading. Intermediate products use i128, so no
//! amount the service accepts can overflow.

/// `numerator / denominator` rounded half up; both non-negative, denominator > 0.
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(numerator >= 0 && denominator > 0);
    (2 * numerator + denominator) / (2 * denominator)
}

/// `bp` basis points of `amount`, rounded half up.
pub fn basis_points_of(amount: i64, bp: i32) -> i64 {
    to_i64(div_round_half_up(amount as i128 * bp as i128, 10_000))
}

/// Narrows a value that is bounded by an i64 amount by construction.
pub(crate) fn to_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Spreads `total` over `weights` in proportion, by largest remainder: each
/// share is the floor of its exact part, and the units left over go to the
/// largest fractional remainders (ties: earlier first). The shares sum to
/// `total` exactly; with `total <= sum(weights)` no share exceeds its weight.
pub fn spread(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| *w as i128).sum();
    if sum <= 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<i64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = total as i128 * *w as i128;
        shares.push(to_i64(exact / sum));
        remainders.push((exact % sum, i));
    }
    let left = total - shares.iter().sum::<i64>();
    // Largest remainder first; equal remainders keep line order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take(left.max(0) as usize) {
        shares[i] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_up_rounds_halves_away_from_zero() {
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(15, 10), 2);
        assert_eq!(basis_points_of(999, 1000), 100); // 99.9 -> 100
        assert_eq!(basis_points_of(995, 1000), 100); // 99.5 -> 100
        assert_eq!(basis_points_of(994, 1000), 99); // 99.4 -> 99
    }

    #[test]
    fn ten_percent_of_three_lines_of_3_33_spreads_exactly() {
        // 10 % of 9.99 is 0.999 -> 1.00; 100 over three equal lines: 34, 33, 33.
        let total = basis_points_of(999, 1000);
        assert_eq!(spread(total, &[333, 333, 333]), vec![34, 33, 33]);
    }

    #[test]
    fn largest_remainders_get_the_leftover_units() {
        assert_eq!(spread(10, &[1, 2, 3]), vec![2, 3, 5]); // 1.67, 3.33, 5 -> 1,3,5 +1 to the first
        assert_eq!(spread(6, &[1, 2, 3]), vec![1, 2, 3]);
        assert_eq!(spread(0, &[1, 2]), vec![0, 0]);
        assert_eq!(spread(5, &[0, 0]), vec![0, 0]);
    }
}
