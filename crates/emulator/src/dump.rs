//! Saved search pages: the files `lpdrop convert` reads, as teams keep API responses.
//!
//! Each file is one Messaging Interactions search response (`_metadata` plus up to
//! `page_size` records with every node, as a `v=2` request for all content returns them), named
//! so that a directory listing sorts in paging order.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::json;

use crate::Dataset;

/// Writes conversations `first .. first + count` as pages of `page_size` into `dir`.
/// Returns the number of files and bytes written.
pub fn write_pages(
    dataset: &Dataset,
    first: u64,
    count: u64,
    page_size: u64,
    dir: &Path,
) -> io::Result<(u64, u64)> {
    fs::create_dir_all(dir)?;
    let page_size = page_size.max(1);
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut offset = 0u64;
    while offset < count {
        let n = page_size.min(count - offset);
        let records: Vec<_> = (first + offset..first + offset + n)
            .map(|i| dataset.conversation(i))
            .collect();
        let page = json!({
            "_metadata": {
                "count": count,
                "self": {"rel": "self", "href": format!("saved page offset={offset} limit={page_size}")},
                "shardsStatusResult": {"partialResult": false},
            },
            "conversationHistoryRecords": records,
        });
        let path = dir.join(format!("msghist-page-{:08}.json", offset / page_size));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        serde_json::to_writer(&mut out, &page)?;
        out.flush()?;
        bytes += out.get_ref().metadata()?.len();
        files += 1;
        offset += n;
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;

    #[test]
    fn pages_hold_every_conversation_once_in_order() {
        let dir = std::env::temp_dir().join(format!("lpdrop-dump-{}", std::process::id()));
        let dataset = Dataset::new(&EmulatorConfig::default());
        let (files, bytes) = write_pages(&dataset, 10, 250, 100, &dir).unwrap();
        assert_eq!(files, 3);
        assert!(bytes > 0);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let mut ids = Vec::new();
        for name in &names {
            let page: serde_json::Value = serde_json::from_slice(&fs::read(name).unwrap()).unwrap();
            assert_eq!(page["_metadata"]["count"], 250);
            for r in page["conversationHistoryRecords"].as_array().unwrap() {
                ids.push(r["info"]["conversationId"].as_str().unwrap().to_string());
            }
        }
        let expected: Vec<_> = (10..260).map(|i| dataset.conversation_id(i)).collect();
        assert_eq!(ids, expected);
        fs::remove_dir_all(&dir).unwrap();
    }
}
