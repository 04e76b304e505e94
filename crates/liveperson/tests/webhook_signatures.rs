//! The vendor's two signed test vectors, and the derived ones (sha256, hex, emoji bodies), from
//! `tests/fixtures/liveperson-docs/webhooks/signatures.json`: every one verifies over the exact
//! file bytes, and a one-byte change fails.

use std::path::PathBuf;

use lpdrop_liveperson::webhook::signature::{Refusal, verify};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/liveperson-docs/webhooks")
}

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("signatures.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn body(file: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(file)).unwrap()
}

#[test]
fn vendor_and_derived_vectors_verify() {
    let vectors = vectors();
    let mut checked = 0;
    for group in ["vendor_vectors", "derived_vectors"] {
        for v in vectors[group].as_array().unwrap() {
            let body = body(v["file"].as_str().unwrap());
            assert_eq!(body.len() as u64, v["bytes"].as_u64().unwrap());
            let secret = v["secret"].as_str().unwrap();
            let header = v["expected"].as_str().unwrap();
            assert_eq!(verify(secret, &body, header), Ok(()), "{group}: {header}");
            // One byte changed anywhere fails.
            for at in [0, body.len() / 2, body.len() - 1] {
                let mut changed = body.clone();
                changed[at] ^= 0x01;
                assert_eq!(verify(secret, &changed, header), Err(Refusal::Mismatch));
            }
            assert_eq!(verify("wrong", &body, header), Err(Refusal::Mismatch));
            checked += 1;
        }
    }
    assert_eq!(checked, 2 + 10);
}

#[test]
fn the_documented_near_miss_fails() {
    let vectors = vectors();
    let miss = &vectors["must_fail"][0];
    let mut body = body("signed-chatstate-pause.json");
    let at = miss["byte_offset"].as_u64().unwrap() as usize;
    body[at] = miss["new_byte"].as_str().unwrap().as_bytes()[0];
    let secret = vectors["vendor_vectors"][0]["secret"].as_str().unwrap();
    let stale = miss["signature_that_must_fail"].as_str().unwrap();
    assert_eq!(verify(secret, &body, stale), Err(Refusal::Mismatch));
    let fresh = miss["correct_signature_of_changed_bytes"].as_str().unwrap();
    assert_eq!(verify(secret, &body, fresh), Ok(()));
}
