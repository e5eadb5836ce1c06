//! k-means: the nearest centre is the cluster; `transform` gives the distances to every centre.

use crate::numeric::dot;
use crate::{Matrix, Output, Predictions, Result};

/// Fitted cluster centres.
#[derive(Clone, Debug, PartialEq)]
pub struct KMeans {
    pub centers: Matrix,
}

impl KMeans {
    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let k = self.centers.rows();
        let c_norms: Vec<f64> = self.centers.iter_rows().map(|c| dot(c, c)).collect();
        let mut clusters = Vec::with_capacity(x.rows());
        let mut distances = Matrix::zeros(x.rows(), k);
        for (r, row) in x.iter_rows().enumerate() {
            let x_norm = dot(row, row);
            let mut best = 0;
            let mut best_d = f64::INFINITY;
            let d = distances.row_mut(r);
            for c in 0..k {
                let xc = dot(row, self.centers.row(c));
                // Lloyd's assignment compares ||c||^2 - 2 x.c (the ||x||^2 term is common).
                let partial = c_norms[c] - 2.0 * xc;
                if partial < best_d {
                    best_d = partial;
                    best = c;
                }
                // euclidean_distances: -2 x.c + ||x||^2 + ||c||^2, clipped at 0, then sqrt.
                let mut sq = -2.0 * xc;
                sq += x_norm;
                sq += c_norms[c];
                d[c] = sq.max(0.0).sqrt();
            }
            clusters.push(best as i64);
        }
        let mut out = Output::new(Predictions::Clusters(clusters));
        out.distances = Some(distances);
        Ok(out)
    }
}
