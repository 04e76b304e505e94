//! Arbitrary bytes as one Messaging Interactions record: decode_record, MessagingTables::append, finish_batch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lpdrop_fuzz::messaging_record(data);
});
