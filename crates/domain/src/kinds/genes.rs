//! `genes`: parse an uploaded gene file and store its sequences.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::genes::{Compression, GeneFormat};

use super::Params;
use crate::job::SpecError;
use crate::limits::Limits;

/// Parameters of a `genes` job: the gene file to parse (jobs of this kind are
/// created by `POST /api/v1/gene-files/{id}/uploaded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesParams {
    file_id: Uuid,
}

impl GenesParams {
    pub fn new(file_id: Uuid) -> Self {
        Self { file_id }
    }

    pub fn file_id(&self) -> Uuid {
        self.file_id
    }
}

impl Params for GenesParams {
    fn parse(params: &serde_json::Value, _: &Limits) -> Result<Self, SpecError> {
        let obj = params.as_object().ok_or_else(|| SpecError::param("file_id", "is required: params must be an object like {\"file_id\": \"<uuid>\"}"))?;
        super::no_extra_fields(obj, &["file_id"], "file_id")?;
        let id = obj
            .get("file_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| SpecError::param("file_id", "must be the id of a gene file (a UUID)"))?;
        Ok(Self { file_id: id })
    }

    fn canonical(&self) -> serde_json::Value {
        serde_json::json!({ "file_id": self.file_id })
    }

    fn schema(_: &Limits) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["file_id"],
            "additionalProperties": false,
            "properties": {"file_id": {"type": "string", "format": "uuid"}},
        })
    }
}

/// The result of a `genes` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GenesResult {
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Uuid,
    pub format: GeneFormat,
    /// Null for an uncompressed file.
    pub compression: Option<Compression>,
    /// Records read (valid and invalid).
    pub records: u64,
    /// Sequences stored (the first of each name).
    pub stored: u64,
    pub invalid: u64,
    /// Records whose name was already stored (not stored again).
    pub duplicates: u64,
    /// Sequences that had whitespace inside (removed).
    pub whitespace_stripped: u64,
    pub bases: u64,
    /// The GC fraction of the valid sequences' bases.
    pub gc: f64,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub mean_length: f64,
    /// The file's size as uploaded.
    pub bytes: u64,
    pub decompressed_bytes: u64,
    pub lines: u64,
    /// The first problems found (all are counted in `invalid`).
    pub problems: Vec<GeneProblem>,
    /// Records already stored by an earlier attempt (resumed at a checkpoint).
    pub resumed_from: u64,
    pub elapsed_ms: u64,
    /// With S3 storage: the key of the result document in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
}

/// An invalid record of a gene file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GeneProblem {
    /// The record's index in the file.
    pub record: u64,
    /// Where it went wrong.
    pub line: u64,
    pub column: u64,
    /// The record's name.
    pub name: String,
    pub reason: String,
}
