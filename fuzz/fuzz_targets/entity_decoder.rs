//! Arbitrary bytes as an account configuration list: parse_entity_list, decode_user / decode_skill / decode_agent_group, DimensionTables, finish_batch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lpdrop_fuzz::entity_list(data);
});
