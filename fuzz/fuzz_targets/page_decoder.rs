//! Arbitrary bytes as a Messaging Interactions search page: parse_page, decode_record on every record, MessagingTables::append, finish_batch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lpdrop_fuzz::messaging_page(data);
});
