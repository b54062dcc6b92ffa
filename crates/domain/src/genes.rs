//! Gene files: formats, compression, the create request's rules and the
//! `genes` job's parameters.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

    /// The JSON Schema of a gene file's creation (`file_name`, `format`,
    /// `compression`, `on_invalid`): the rules of [`GeneFileSpec::parse`].
    pub fn schema() -> serde_json::Value {
        let any_case = |words: &[&str]| {
            let alts: Vec<String> = words.iter().map(|w| w.chars().map(|c| format!("[{}{}]", c, c.to_ascii_uppercase())).collect()).collect();
            alts.join("|")
        };
        let extensions = any_case(&["fasta", "fa", "fna", "fas", "fastq", "fq", "csv"]);
        let end = crate::kinds::END;
        serde_json::json!({
            "type": "object",
            "required": ["file_name"],
            "additionalProperties": false,
            "properties": {
                "file_name": {
                    "type": "string",
                    "maxLength": Self::MAX_NAME_LEN,
                    "pattern": format!("^[^\\u0000-\\u001f\\u007f-\\u009f/\\\\]*[^\\s\\u0000-\\u001f\\u007f-\\u009f/\\\\][^\\u0000-\\u001f\\u007f-\\u009f/\\\\]*{end}"),
                    "description": "The file's name, e.g. `genes.fasta` or `reads.fq.gz`: no control characters or slashes",
                    "example": "demo_file.fasta",
                },
                "format": {"type": ["string", "null"], "pattern": format!("^({}){end}", any_case(&["fasta", "csv", "fastq"])), "description": "`fasta`, `csv` or `fastq` in any case; inferred from the name when absent"},
                "compression": {"type": ["string", "null"], "pattern": format!("^({}){end}", any_case(&["gzip", "none"])), "description": "`gzip` or `none` in any case; gzip when absent and the name ends in `.gz`"},
                "on_invalid": {"type": ["string", "null"], "enum": ["skip", "fail", null], "description": "What an invalid record does: `skip` (reported, the default) or `fail` (the whole file)"},
            },
            "anyOf": [
                {"required": ["format"], "properties": {"format": {"type": "string"}}},
                {"properties": {"file_name": {"pattern": format!("\\.({extensions})(\\.[gG][zZ])?\\s*{end}")}}},
            ],
        })
    }

    /// `format` absent: inferred from the name; `compression` absent: gzip
    /// when the name ends in `.gz`.
    pub fn parse(file_name: &str, format: Option<&str>, compression: Option<&str>) -> Result<Self, SpecError> {
        let name = file_name.trim();
        if name.is_empty() || file_name.chars().count() > Self::MAX_NAME_LEN || file_name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
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
