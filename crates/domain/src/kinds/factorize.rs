//! `factorize`: the prime factors of a positive integer.

use num_bigint::BigUint;
use num_traits::Zero;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Params;
use crate::job::SpecError;
use crate::limits::Limits;

/// Parameters of a `factorize` job. `n` is at least 1 and has at most
/// `Limits::factorize_max_digits` digits: an instance cannot hold anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorizeParams {
    n: BigUint,
}

/// Factorizations of numbers of at most this many bits (below 2^64) are quick jobs.
pub const QUICK_MAX_BITS: u64 = 64;

impl FactorizeParams {
    pub fn n(&self) -> &BigUint {
        &self.n
    }
}

impl Params for FactorizeParams {
    fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let obj = params
            .as_object()
            .ok_or_else(|| SpecError::param("n", "is required: params must be an object like {\"n\": \"360\"}"))?;
        super::no_extra_fields(obj, &["n"], "n")?;
        let text = match obj.get("n") {
            None | Some(serde_json::Value::Null) => {
                return Err(SpecError::param("n", "is required (a positive decimal integer as a string)"))
            }
            Some(serde_json::Value::String(s)) => s.clone(),
            // Anything else is a whole JSON number from 1 to 2^53, or refused.
            Some(v) => match super::json_uint(v).filter(|&n| n > 0) {
                Some(n) => n.to_string(),
                None => return Err(SpecError::param("n", "must be a positive decimal integer written as a string, e.g. \"360\"")),
            },
        };
        let max = limits.factorize_max_digits;
        if text.len() > max + 64 || text.trim_start_matches('0').len() > max {
            return Err(SpecError::param("n", format!("has more than {max} digits (the limit is {max} digits)")));
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SpecError::param("n", "must be a positive decimal integer (digits 0-9 only, no sign, spaces or exponent)"));
        }
        let n = BigUint::parse_bytes(text.as_bytes(), 10)
            .ok_or_else(|| SpecError::param("n", "must be a positive decimal integer"))?;
        if n.is_zero() {
            return Err(SpecError::param("n", "must be at least 1 (0 has no factorization)"));
        }
        Ok(Self { n })
    }

    fn canonical(&self) -> serde_json::Value {
        serde_json::json!({ "n": self.n.to_str_radix(10) })
    }

    fn schema(limits: &Limits) -> serde_json::Value {
        let max = limits.factorize_max_digits;
        serde_json::json!({
            "type": "object",
            "required": ["n"],
            "additionalProperties": false,
            "properties": {"n": {
                "description": format!("The positive integer to factor: at most {max} digits (leading zeros do not count), as a decimal string, or a JSON integer up to 2^53"),
                "oneOf": [
                    {"type": "string", "maxLength": max + 64, "pattern": format!("^0*[1-9][0-9]{{0,{}}}{}", max.saturating_sub(1), super::END)},
                    {"type": "integer", "minimum": 1, "maximum": super::MAX_JSON_INT},
                ],
                "example": "360",
            }},
        })
    }

    /// A number below 2^64: about a millisecond at most.
    fn is_quick(&self) -> bool {
        self.n.bits() <= QUICK_MAX_BITS
    }
}

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
    use crate::{JobSpec, Limits, SpecError};
    use serde_json::json;

    fn parse(params: serde_json::Value) -> Result<JobSpec, SpecError> {
        JobSpec::parse("factorize", &params, &Limits::default())
    }

    #[test]
    fn factorize_accepts_decimal_strings_and_canonicalises_leading_zeros() {
        let spec = parse(json!({"n": "000360"})).expect("valid");
        assert_eq!(spec.canonical_params(), json!({"n": "360"}));
    }

    #[test]
    fn factorize_accepts_small_json_integers() {
        assert_eq!(parse(json!({"n": 97})).expect("valid").canonical_params(), json!({"n": "97"}));
    }

    #[test]
    fn factorize_refuses_zero_negative_fractions_and_junk() {
        for bad in [json!({"n": "0"}), json!({"n": "-5"}), json!({"n": "1.5"}), json!({"n": "12a"}),
                    json!({"n": ""}), json!({"n": " 12"}), json!({"n": 1.5}), json!({"n": -3}),
                    json!({}), json!([1]), json!({"n": "1e9"}), json!({"n": "5", "m": 1})] {
            let err = parse(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(err.code(), "invalid_params", "{bad}");
            assert_eq!(err.field(), "params.n");
        }
    }

    #[test]
    fn factorize_limit_names_the_limit() {
        let limits = Limits { factorize_max_digits: 10, ..Limits::default() };
        let err = JobSpec::parse("factorize", &json!({"n": "12345678901"}), &limits).expect_err("too long");
        assert!(err.message().contains("10 digits"), "{}", err.message());
        // Leading zeros do not count against the limit.
        JobSpec::parse("factorize", &json!({"n": "0001234567890"}), &limits).expect("ten digits");
    }

    #[test]
    fn a_factorization_keeps_its_json_shape() {
        let r = FactorizeResult { factors: vec![PrimeFactor { p: "2".into(), e: 2, method: "trial_division".into() }], method: "trial_division".into(), elapsed_ms: 0 };
        assert_eq!(serde_json::to_value(&r).expect("json"), json!({"factors": [{"p": "2", "e": 2, "method": "trial_division"}], "method": "trial_division", "elapsed_ms": 0}));
    }
}
