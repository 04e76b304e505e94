//! The flags that shape the parquet files (pitfalls P7) and bound the writer's memory: global,
//! so that demo, sync, convert and worker write the same files from the same settings.

use clap::ValueEnum;
use lpdrop_drop::WriterOptions;
use parquet::basic::{Compression, ZstdLevel};

const MIB: usize = 1 << 20;

#[derive(clap::Args, Debug, Clone)]
pub struct ParquetArgs {
    /// A row group is closed once its encoded size reaches this many MiB. Readers (Athena,
    /// Spark, Trino) like 64 to 128; smaller row groups mean more, smaller reads.
    #[arg(
        long,
        global = true,
        env = "LPDROP_ROW_GROUP_MB",
        default_value_t = 64,
        value_name = "MIB",
        value_parser = clap::value_parser!(u32).range(1..=1024)
    )]
    pub row_group_mb: u32,
    /// A table's file is closed and its next part started past this many MiB (Athena and
    /// Spark like 128 to 512). At least --row-group-mb.
    #[arg(
        long,
        global = true,
        env = "LPDROP_MAX_FILE_MB",
        default_value_t = 256,
        value_name = "MIB",
        value_parser = clap::value_parser!(u32).range(1..=16384)
    )]
    pub max_file_mb: u32,
    /// Parquet compression: snappy (read by every engine), zstd (smaller files, level 3) or
    /// none.
    #[arg(
        long,
        global = true,
        env = "LPDROP_COMPRESSION",
        value_enum,
        default_value_t = Codec::Snappy
    )]
    pub compression: Codec,
    /// The process's heap, in MiB, past which open row groups are written out early
    /// (largest first) to stay under it: a safety net that trades row-group size for memory
    /// when tables are unusually wide (0: off). Normal jobs stay well below the default.
    #[arg(
        long,
        global = true,
        env = "LPDROP_MEMORY_LIMIT_MB",
        default_value_t = 384,
        value_name = "MIB"
    )]
    pub memory_limit_mb: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    Snappy,
    Zstd,
    None,
}

impl ParquetArgs {
    /// The writer's options, or why these flags do not go together.
    pub fn writer_options(&self) -> Result<WriterOptions, String> {
        if self.row_group_mb > self.max_file_mb {
            return Err(format!(
                "--row-group-mb {} is larger than --max-file-mb {}: a row group cannot be \
                 larger than the file that holds it",
                self.row_group_mb, self.max_file_mb
            ));
        }
        let compression = match self.compression {
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(3).expect("3 is a zstd level")),
            Codec::None => Compression::UNCOMPRESSED,
        };
        let defaults = WriterOptions::default();
        let row_group_bytes = self.row_group_mb as usize * MIB;
        Ok(WriterOptions {
            row_group_bytes,
            max_file_bytes: u64::from(self.max_file_mb) * MIB as u64,
            compression,
            // The budget's preferred early row group stays a quarter of a full one.
            min_row_group_bytes: defaults.min_row_group_bytes.min(row_group_bytes / 4),
            heap_limit_bytes: (self.memory_limit_mb > 0)
                .then(|| self.memory_limit_mb as usize * MIB),
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(row_group_mb: u32, max_file_mb: u32) -> ParquetArgs {
        ParquetArgs {
            row_group_mb,
            max_file_mb,
            compression: Codec::Zstd,
            memory_limit_mb: 0,
        }
    }

    #[test]
    fn flags_become_writer_options() {
        let o = args(32, 128).writer_options().unwrap();
        assert_eq!(o.row_group_bytes, 32 << 20);
        assert_eq!(o.max_file_bytes, 128 << 20);
        assert!(matches!(o.compression, Compression::ZSTD(_)));
        assert_eq!(o.heap_limit_bytes, None);
        assert_eq!(o.min_row_group_bytes, 8 << 20);
    }

    #[test]
    fn a_row_group_larger_than_its_file_is_refused() {
        let e = args(512, 256).writer_options().unwrap_err();
        assert!(
            e.contains("--row-group-mb 512") && e.contains("--max-file-mb 256"),
            "{e}"
        );
    }
}
