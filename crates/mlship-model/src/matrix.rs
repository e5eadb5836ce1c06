//! `Matrix`: a dense row-major f64 matrix, the currency of the estimators.

use crate::{Error, Result};

/// A dense, row-major matrix of f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Builds a matrix from row-major data; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Matrix> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::invalid(format!(
                "matrix of {rows}x{cols} cannot hold {} values",
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }

    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }

    /// A matrix of `rows` rows from its columns (each `rows` long).
    pub fn from_columns(rows: usize, cols: &[&[f64]]) -> Result<Matrix> {
        if cols.iter().any(|c| c.len() != rows) {
            return Err(Error::invalid(format!("columns are not all {rows} long")));
        }
        let width = cols.len();
        let mut data = vec![0.0; rows * width];
        for (j, c) in cols.iter().enumerate() {
            for (i, x) in c.iter().enumerate() {
                data[i * width + j] = *x;
            }
        }
        Matrix::new(rows, width, data)
    }

    /// The columns, each as a vector.
    pub fn columns(&self) -> Vec<Vec<f64>> {
        (0..self.cols)
            .map(|j| self.iter_rows().map(|r| r[j]).collect())
            .collect()
    }

    /// Iterates over the rows.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f64]> {
        // `max(1)` keeps chunks_exact valid for zero-column matrices (which have no data).
        self.data.chunks_exact(self.cols.max(1)).take(self.rows)
    }

    /// `self @ other.T + bias`: row i, column k is `dot(self.row(i), other.row(k)) + bias[k]`.
    pub fn matmul_t(&self, other: &Matrix, bias: Option<&[f64]>) -> Matrix {
        let mut out = Matrix::zeros(self.rows, other.rows);
        for i in 0..self.rows {
            let x = self.row(i);
            for k in 0..other.rows {
                let mut s = crate::numeric::dot(x, other.row(k));
                if let Some(b) = bias {
                    s += b[k];
                }
                out.data[i * other.rows + k] = s;
            }
        }
        out
    }
}
