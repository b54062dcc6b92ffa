//! `primes`: count or list the primes of a range.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Params;
use crate::job::SpecError;
use crate::limits::Limits;

/// `list` (every prime, stored compactly, served paginated or streamed) or
/// `count` (how many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrimesMode {
    List,
    Count,
}

/// Parameters of a `primes` job: `0 <= from <= to <= 2^64 - 1`, both ends
/// inclusive, `to - from` within the mode's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimesParams {
    from: u64,
    to: u64,
    mode: PrimesMode,
}

/// Prime counts over ranges at most this wide are quick jobs.
pub const QUICK_COUNT_MAX_WIDTH: u64 = 1_000_000;

impl PrimesParams {
    pub fn from(&self) -> u64 {
        self.from
    }

    pub fn to(&self) -> u64 {
        self.to
    }

    pub fn mode(&self) -> PrimesMode {
        self.mode
    }

    /// `[from, to]` of this job's mode, with no check of the range's width:
    /// a shard of a job that was checked.
    pub fn shard(&self, from: u64, to: u64) -> Self {
        Self { from, to, mode: self.mode }
    }

    /// A required integer field from 0 to 2^64 - 1 (decimal string or JSON number).
    pub(super) fn bound(obj: &serde_json::Map<String, serde_json::Value>, field: &'static str) -> Result<u64, SpecError> {
        let rule = "must be an integer from 0 to 18446744073709551615 (2^64 - 1): a decimal string, or a JSON number up to 2^53";
        match obj.get(field) {
            None | Some(serde_json::Value::Null) => Err(SpecError::param(field, format!("is required: it {rule}"))),
            Some(v @ serde_json::Value::Number(n)) => match super::json_uint(v) {
                Some(v) => Ok(v),
                None if n.as_i64().is_some_and(|v| v < 0) || n.as_f64().is_some_and(|v| v < 0.0) => Err(SpecError::param(field, format!("is negative: it {rule}"))),
                None if n.as_f64().is_some_and(|v| v.fract() != 0.0) => Err(SpecError::param(field, format!("is not an integer: it {rule}"))),
                None if n.as_f64().is_some_and(|v| v >= 18446744073709551615.0) && n.as_u64().is_none() => {
                    Err(SpecError::param(field, format!("is above 2^64 - 1: it {rule}")))
                }
                None => Err(SpecError::param(field, format!("is above 2^53 as a JSON number: it {rule}"))),
            },
            Some(serde_json::Value::String(s)) => {
                if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    let why = if s.starts_with('-') { "is negative" } else { "is not a decimal integer" };
                    return Err(SpecError::param(field, format!("{why}: it {rule}")));
                }
                s.trim_start_matches('0')
                    .parse::<u64>()
                    .or_else(|e| if s.trim_start_matches('0').is_empty() { Ok(0) } else { Err(e) })
                    .map_err(|_| SpecError::param(field, format!("is above 2^64 - 1: it {rule}")))
            }
            Some(_) => Err(SpecError::param(field, format!("has the wrong type: it {rule}"))),
        }
    }

}

impl Params for PrimesParams {
    fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let obj = params.as_object().ok_or_else(|| {
            SpecError::param("from", "is required: params must be an object like {\"from\": 0, \"to\": 100, \"mode\": \"count\"}")
        })?;
        super::no_extra_fields(obj, &["from", "to", "mode"], "mode")?;
        let from = PrimesParams::bound(obj, "from")?;
        let to = PrimesParams::bound(obj, "to")?;
        let mode = match obj.get("mode").and_then(|m| m.as_str()) {
            Some("list") => PrimesMode::List,
            Some("count") => PrimesMode::Count,
            _ => return Err(SpecError::param("mode", "must be \"list\" or \"count\"")),
        };
        if from > to {
            return Err(SpecError::param("from", format!("must not exceed to (from = {from}, to = {to})")));
        }
        let (max, name) = match mode {
            PrimesMode::List => (limits.primes_list_max_width, "list"),
            PrimesMode::Count => (limits.primes_count_max_width, "count"),
        };
        if to - from > max {
            return Err(SpecError::param(
                "to",
                format!("makes the range too wide for {name} mode: to - from = {} exceeds the limit of {max}", to - from),
            ));
        }
        Ok(Self { from, to, mode })
    }

    fn canonical(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "mode": self.mode,
        })
    }

    fn schema(limits: &Limits) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "description": format!("`from` <= `to`; `to` - `from` at most {} in list mode and {} in count mode", limits.primes_list_max_width, limits.primes_count_max_width),
            "required": ["from", "to", "mode"],
            "additionalProperties": false,
            "properties": {
                "from": super::u64_schema(u64::MAX, "The range's first number (inclusive), 0 to 2^64 - 1"),
                "to": super::u64_schema(u64::MAX, "The range's last number (inclusive), `from` to 2^64 - 1"),
                "mode": {"type": "string", "enum": ["list", "count"], "description": "`list`: every prime (paged or streamed from the result); `count`: how many"},
            },
            "example": {"from": 0, "to": 1000, "mode": "count"},
        })
    }

    /// A count over at most 10^6 numbers: about a millisecond at most.
    fn is_quick(&self) -> bool {
        self.mode == PrimesMode::Count && self.to - self.from <= QUICK_COUNT_MAX_WIDTH
    }
}

/// The result of a `primes` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrimesResult {
    pub mode: PrimesMode,
    /// The range's ends, in decimal.
    #[schema(example = "0")]
    pub from: String,
    #[schema(example = "1000")]
    pub to: String,
    /// How many primes the range holds.
    pub count: u64,
    /// List mode: the first primes (up to 10); all of them are served by
    /// `GET /api/v1/jobs/{id}/primes` and `.../result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_primes: Option<Vec<u64>>,
    /// List mode: stored chunks of up to 65,536 primes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
    /// A range split across workers: how many shards it ran as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u64>,
    /// A list split across workers: each shard's count, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_counts: Option<Vec<u64>>,
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobSpec, Limits, SpecError};
    use serde_json::json;

    fn primes(params: serde_json::Value) -> Result<PrimesParams, SpecError> {
        match JobSpec::parse("primes", &params, &Limits::default())? {
            JobSpec::Primes(p) => Ok(p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn primes_accepts_numbers_and_strings_up_to_2_64_minus_1() {
        let p = primes(json!({"from": 0, "to": "100", "mode": "count"})).expect("valid");
        assert_eq!((p.from, p.to, p.mode), (0, 100, PrimesMode::Count));
        let top = primes(json!({"from": "18446744073709551515", "to": "18446744073709551615", "mode": "list"})).expect("valid");
        assert_eq!(top.to, u64::MAX);
        assert_eq!(primes(json!({"from": "000", "to": "7", "mode": "list"})).expect("valid").canonical(),
                   json!({"from": "0", "to": "7", "mode": "list"}));
    }

    #[test]
    fn primes_refuses_each_broken_rule_with_its_name() {
        let cases = [
            (json!({"from": 10, "to": 5, "mode": "count"}), "must not exceed"),
            (json!({"from": -1, "to": 5, "mode": "count"}), "negative"),
            (json!({"from": "-1", "to": 5, "mode": "count"}), "negative"),
            (json!({"from": 1.5, "to": 5, "mode": "count"}), "not an integer"),
            (json!({"from": "abc", "to": 5, "mode": "count"}), "not a decimal"),
            (json!({"from": 0, "to": "18446744073709551616", "mode": "count"}), "above 2^64 - 1"),
            (json!({"from": 0, "to": 18446744073709551616.0, "mode": "count"}), "above 2^64 - 1"),
            (json!({"from": 0, "to": "2000000000", "mode": "list"}), "exceeds the limit of 1000000000"),
            (json!({"from": 0, "to": 5, "mode": "sum"}), "list\" or \"count"),
            (json!({"from": 0, "to": 5}), "list\" or \"count"),
            (json!({"to": 5, "mode": "count"}), "required"),
        ];
        for (params, needle) in cases {
            let err = primes(params.clone()).expect_err(&params.to_string());
            assert_eq!(err.code(), "invalid_params");
            assert!(err.message().contains(needle), "{params}: {}", err.message());
        }
    }
}
