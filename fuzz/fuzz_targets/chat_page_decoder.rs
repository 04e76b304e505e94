//! Arbitrary bytes as an Engagement History search page: parse_chat_page, decode_chat_record on every record, ChatTables::append, finish_batch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lpdrop_fuzz::chat_page(data);
});
