//! Typed results of the job kinds, as the API returns them in `result` (and,
//! for a stopped job, in `error.details`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One prime factor of a factorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrimeFactor {
    /// The prime, in decimal.
    #[schema(example = "3")]
    pub p: String,
    /// Its exponent.
    pub e: u32,
    /// The engine that found it: `trial_division`, `primality_test`,
    /// `perfect_power`, `pollard_brent`, `ecm`, `rho_ecm` or `siqs`.
    pub method: String,
}

/// The result of a `factorize` job: the prime factors in increasing order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactorizeResult {
    pub factors: Vec<PrimeFactor>,
    /// The engine that did the decisive work.
    pub method: String,
    pub elapsed_ms: u64,
}

/// What a `factorize` job had found when its time budget ran out (in
/// `error.details`): the prime factors so far and what is left unfactored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactorizePartial {
    pub factors: Vec<PrimeFactor>,
    /// Composite cofactors not yet split, in decimal.
    pub unfactored: Vec<String>,
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_factorization_keeps_its_json_shape() {
        let r = FactorizeResult { factors: vec![PrimeFactor { p: "2".into(), e: 2, method: "trial_division".into() }], method: "trial_division".into(), elapsed_ms: 0 };
        assert_eq!(serde_json::to_value(&r).expect("json"), json!({"factors": [{"p": "2", "e": 2, "method": "trial_division"}], "method": "trial_division", "elapsed_ms": 0}));
    }
}
