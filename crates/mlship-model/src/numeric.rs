//! Numeric kernels that copy numpy's and scipy's arithmetic, so that scores match to the last bits.

/// A dot product summed left to right, as BLAS does for short vectors.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// numpy's pairwise summation (`np.sum` over a contiguous axis).
pub fn np_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum(&a[..n2]) + np_sum(&a[n2..])
    }
}

/// scipy.special.expit: `1 / (1 + exp(-x))`.
pub fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// scipy.special.logit, with the log1p branch scipy uses near 0.5.
pub fn logit(x: f64) -> f64 {
    if !(0.3..=0.65).contains(&x) {
        (x / (1.0 - x)).ln()
    } else {
        let s = 2.0 * (x - 0.5);
        s.ln_1p() - (-s).ln_1p()
    }
}

/// sklearn.utils.extmath.softmax on one row, in place: subtract the max, exp, divide by the sum.
pub fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in row.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum = np_sum(row);
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// scipy.special.logsumexp of one row.
pub fn logsumexp(row: &[f64]) -> f64 {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let tmp: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
    np_sum(&tmp).ln() + max
}

/// Index of the first maximum, as numpy's argmax (NaN wins, as in numpy).
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// libsvm's `powi`: integer power by repeated squaring.
pub fn powi(base: f64, times: i32) -> f64 {
    let mut tmp = base;
    let mut ret = 1.0;
    let mut t = times;
    while t > 0 {
        if t % 2 == 1 {
            ret *= tmp;
        }
        tmp *= tmp;
        t /= 2;
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_plain_sum_on_small_integers() {
        for n in 0..300 {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            assert_eq!(np_sum(&v), (n * (n.max(1) - 1) / 2) as f64, "n={n}");
        }
    }

    #[test]
    fn argmax_picks_first_of_ties() {
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
    }

    #[test]
    fn logit_inverts_expit() {
        for x in [-5.0, -0.3, 0.0, 0.1, 2.0] {
            assert!((logit(expit(x)) - x).abs() < 1e-12);
        }
    }

    #[test]
    fn powi_is_integer_power() {
        assert_eq!(powi(2.0, 10), 1024.0);
        assert_eq!(powi(3.0, 0), 1.0);
    }
}
