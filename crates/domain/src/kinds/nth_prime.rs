//! `nth_prime`: the n-th prime, for any n up to pi(2^64 - 1).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Params;
use crate::job::SpecError;
use crate::limits::Limits;

/// pi(2^64 - 1): how many primes lie below 2^64, the largest n.
pub const NTH_PRIME_MAX: u64 = 425_656_284_035_217_743;

/// Up to the 78,498th prime (999,983) one sieve below 10^6 answers: about a
/// millisecond, a quick job.
pub const QUICK_NTH_MAX: u64 = 78_498;

/// Parameters of an `nth_prime` job: `1 <= n <= pi(2^64 - 1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NthPrimeParams {
    n: u64,
}

impl NthPrimeParams {
    pub fn n(&self) -> u64 {
        self.n
    }
}

impl Params for NthPrimeParams {
    fn parse(params: &serde_json::Value, _limits: &Limits) -> Result<Self, SpecError> {
        let obj = params.as_object().ok_or_else(|| SpecError::param("n", "is required: params must be an object like {\"n\": 1000000}"))?;
        super::no_extra_fields(obj, &["n"], "n")?;
        let n = super::primes::PrimesParams::bound(obj, "n")?;
        if n == 0 {
            return Err(SpecError::param("n", "must be at least 1 (the 1st prime is 2)"));
        }
        if n > NTH_PRIME_MAX {
            return Err(SpecError::param("n", format!("exceeds {NTH_PRIME_MAX} = pi(2^64 - 1), the number of primes below 2^64")));
        }
        Ok(Self { n })
    }

    fn canonical(&self) -> serde_json::Value {
        serde_json::json!({"n": self.n.to_string()})
    }

    fn schema(_limits: &Limits) -> serde_json::Value {
        // As `u64_schema`, less zero: a lookahead refuses strings of zeros.
        let digits = super::decimal_pattern(NTH_PRIME_MAX);
        let n = serde_json::json!({
            "description": "Which prime: 1 for 2, 2 for 3, up to pi(2^64 - 1) = 425656284035217743",
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": NTH_PRIME_MAX.min(super::MAX_JSON_INT)},
                {"type": "string", "maxLength": 64, "pattern": format!("^(?!0+{}){}", super::END, &digits[1..])},
            ],
        });
        serde_json::json!({
            "type": "object",
            "required": ["n"],
            "additionalProperties": false,
            "properties": {"n": n},
            "example": {"n": "1000000000"},
        })
    }

    fn is_quick(&self) -> bool {
        self.n <= QUICK_NTH_MAX
    }
}

/// The result of an `nth_prime` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NthPrimeResult {
    /// n, in decimal.
    #[schema(example = "1000000")]
    pub n: String,
    /// The n-th prime, in decimal (it may exceed 2^53).
    #[schema(example = "15485863")]
    pub prime: String,
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobSpec, Limits};
    use serde_json::json;

    fn nth(params: serde_json::Value) -> Result<NthPrimeParams, SpecError> {
        match JobSpec::parse("nth_prime", &params, &Limits::default())? {
            JobSpec::NthPrime(p) => Ok(p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nth_prime_takes_1_to_pi_of_2_64() {
        assert_eq!(nth(json!({"n": 1})).expect("valid").n(), 1);
        assert_eq!(nth(json!({"n": "425656284035217743"})).expect("valid").n(), NTH_PRIME_MAX);
        assert_eq!(nth(json!({"n": "0010"})).expect("valid").canonical(), json!({"n": "10"}));
        assert!(nth(json!({"n": 78_498})).expect("valid").is_quick());
        assert!(!nth(json!({"n": 78_499})).expect("valid").is_quick());
        for (params, needle) in [
            (json!({"n": 0}), "at least 1"),
            (json!({"n": "425656284035217744"}), "pi(2^64 - 1)"),
            (json!({"n": -3}), "negative"),
            (json!({"n": "x"}), "not a decimal"),
            (json!({}), "required"),
            (json!({"n": 5, "m": 1}), "m"),
        ] {
            let err = nth(params.clone()).expect_err(&params.to_string());
            assert_eq!(err.code(), "invalid_params");
            assert!(err.message().contains(needle), "{params}: {}", err.message());
        }
    }
}
