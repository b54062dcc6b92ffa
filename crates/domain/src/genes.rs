//! Gene files: formats, compression, the create request's rules and the
//! `genes` job's parameters.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::job::SpecError;

/// A gene file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow), diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "lowercase")]
pub enum GeneFormat {
    /// `>name` lines, each followed by sequence lines.
    Fasta,
    /// A header row `gene name,sequence`, then one `name,sequence` row per gene.
    Csv,
    /// Four lines per record: `@name`, sequence, `+`, qualities.
    Fastq,
}

impl GeneFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            GeneFormat::Fasta => "fasta",
            GeneFormat::Csv => "csv",
            GeneFormat::Fastq => "fastq",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fasta" => Some(GeneFormat::Fasta),
            "csv" => Some(GeneFormat::Csv),
            "fastq" => Some(GeneFormat::Fastq),
            _ => None,
        }
    }

    /// From a file name's extension (`.gz` looked through): `.fasta`, `.fa`,
    /// `.fna`, `.fas` -> FASTA; `.fastq`, `.fq` -> FASTQ; `.csv` -> CSV.
    pub fn infer(file_name: &str) -> Option<Self> {
        let lower = file_name.to_ascii_lowercase();
        let base = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = base.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "fasta" | "fa" | "fna" | "fas" => Some(GeneFormat::Fasta),
            "fastq" | "fq" => Some(GeneFormat::Fastq),
            "csv" => Some(GeneFormat::Csv),
            _ => None,
        }
    }
}

/// What a gene file's bytes are compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow), diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
        }
    }
}

/// What an invalid record does to its gene file: skipped (and counted), or
/// the file fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow), diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    Skip,
    Fail,
}

impl OnInvalid {
    pub fn as_str(self) -> &'static str {
        match self {
            OnInvalid::Skip => "skip",
            OnInvalid::Fail => "fail",
        }
    }
}

impl std::str::FromStr for OnInvalid {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "skip" => Ok(OnInvalid::Skip),
            "fail" => Ok(OnInvalid::Fail),
            _ => Err(()),
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            _ => Err(()),
        }
    }
}

impl std::str::FromStr for GeneFormat {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        GeneFormat::parse(s).ok_or(())
    }
}

impl std::fmt::Display for GeneFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated `POST /api/v1/gene-files` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneFileSpec {
    pub file_name: String,
    pub format: GeneFormat,
    pub compression: Option<Compression>,
}

impl GeneFileSpec {
    pub const MAX_NAME_LEN: usize = 255;

    /// `format` absent: inferred from the name; `compression` absent: gzip
    /// when the name ends in `.gz`.
    pub fn parse(file_name: &str, format: Option<&str>, compression: Option<&str>) -> Result<Self, SpecError> {
        let name = file_name.trim();
        if name.is_empty() || name.len() > Self::MAX_NAME_LEN || name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err(SpecError::Field {
                field: "file_name",
                message: format!("file_name must be 1 to {} characters, without control characters or slashes", Self::MAX_NAME_LEN),
            });
        }
        let format = match format {
            Some(f) => GeneFormat::parse(f).ok_or_else(|| SpecError::Field {
                field: "format",
                message: format!("format '{}' is not one of fasta, csv, fastq", f.chars().take(32).collect::<String>()),
            })?,
            None => GeneFormat::infer(name).ok_or_else(|| SpecError::Field {
                field: "format",
                message: "format could not be inferred from file_name (.fasta, .fa, .fna, .fas, .fastq, .fq, .csv, optionally .gz): give format".into(),
            })?,
        };
        let compression = match compression {
            Some(c) if c.eq_ignore_ascii_case("gzip") => Some(Compression::Gzip),
            Some(c) if c.eq_ignore_ascii_case("none") => None,
            Some(c) => {
                return Err(SpecError::Field {
                    field: "compression",
                    message: format!("compression '{}' is not gzip or none", c.chars().take(32).collect::<String>()),
                })
            }
            None if name.to_ascii_lowercase().ends_with(".gz") => Some(Compression::Gzip),
            None => None,
        };
        Ok(Self { file_name: name.to_owned(), format, compression })
    }
}

/// Parameters of a `genes` job: the gene file to parse (jobs of this kind are
/// created by `POST /api/v1/gene-files/{id}/uploaded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesParams {
    pub file_id: Uuid,
}

impl GenesParams {
    pub fn parse(params: &serde_json::Value) -> Result<Self, SpecError> {
        let id = params
            .get("file_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| SpecError::param("file_id", "must be the id of a gene file (a UUID)"))?;
        Ok(Self { file_id: id })
    }

    pub fn canonical(&self) -> serde_json::Value {
        serde_json::json!({ "file_id": self.file_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_inferred_through_gz() {
        assert_eq!(GeneFormat::infer("x.fasta"), Some(GeneFormat::Fasta));
        assert_eq!(GeneFormat::infer("X.FA.GZ"), Some(GeneFormat::Fasta));
        assert_eq!(GeneFormat::infer("reads.fq.gz"), Some(GeneFormat::Fastq));
        assert_eq!(GeneFormat::infer("genes.csv"), Some(GeneFormat::Csv));
        assert_eq!(GeneFormat::infer("genes.txt"), None);
        assert_eq!(GeneFormat::infer("fasta"), None);
    }

    #[test]
    fn create_rules() {
        let s = GeneFileSpec::parse("a.fasta.gz", None, None).unwrap();
        assert_eq!((s.format, s.compression), (GeneFormat::Fasta, Some(Compression::Gzip)));
        let s = GeneFileSpec::parse("a.bin", Some("FASTQ"), Some("none")).unwrap();
        assert_eq!((s.format, s.compression), (GeneFormat::Fastq, None));
        for (name, format, compression, field) in [
            ("a.txt", None, None, "format"),
            ("a.fasta", Some("genbank"), None, "format"),
            ("a.fasta", None, Some("zstd"), "compression"),
            ("", None, None, "file_name"),
            ("../a.fasta", None, None, "file_name"),
        ] {
            let e = GeneFileSpec::parse(name, format, compression).unwrap_err();
            assert_eq!(e.field(), field, "{name}");
        }
    }
}
