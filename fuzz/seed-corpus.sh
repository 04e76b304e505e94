#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the vendor example payloads (tests/fixtures/liveperson-docs)
# and the small hand-written seeds in fuzz/seeds/<target>/. The corpus directory is not
# committed: libFuzzer grows it while fuzzing, and this script only adds files (never removes
# what earlier runs found).
#
#   page_decoder       the Messaging Interactions search pages (msghist-search-*)
#   record_decoder     each record of those pages on its own
#   chat_page_decoder  the Engagement History search pages (enghist-search-*)
#   entity_decoder     each account configuration example wrapped in a list
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
fixtures=${LPDROP_FIXTURES:-$fuzz/../tests/fixtures/liveperson-docs}
corpus=$fuzz/corpus

for t in page_decoder record_decoder chat_page_decoder entity_decoder; do
  mkdir -p "$corpus/$t"
  if [ -d "$fuzz/seeds/$t" ]; then
    cp "$fuzz/seeds/$t"/* "$corpus/$t/"
  fi
done
# cp -f: the fixtures are read-only, and a copy from an earlier run must be overwritable.
cp -f "$fixtures"/msghist-search-*.json "$corpus/page_decoder/"
cp -f "$fixtures"/enghist-search-*.json "$corpus/chat_page_decoder/"
chmod u+w "$corpus"/*/*

if command -v python3 >/dev/null 2>&1; then
  python3 - "$fixtures" "$corpus" <<'EOF'
import glob, json, os, sys
fixtures, corpus = sys.argv[1], sys.argv[2]
def write(target, name, value):
    with open(os.path.join(corpus, target, name), "w") as f:
        json.dump(value, f, separators=(",", ":"))
for path in sorted(glob.glob(os.path.join(fixtures, "msghist-search-*.json"))):
    base = os.path.basename(path)[:-5]
    with open(path) as f:
        page = json.load(f)
    for i, record in enumerate(page.get("conversationHistoryRecords") or []):
        write("record_decoder", f"{base}-record{i}.json", record)
for name in ("users", "skills", "agentgroups"):
    path = os.path.join(fixtures, f"{name}-entity-example.json")
    with open(path) as f:
        write("entity_decoder", f"{name}-list.json", [json.load(f)])
EOF
else
  # Without python the whole pages still seed the record target (as records they quarantine).
  cp -f "$fixtures"/msghist-search-*.json "$corpus/record_decoder/"
  cp -f "$fixtures"/*-entity-example.json "$corpus/entity_decoder/"
  chmod u+w "$corpus"/*/*
fi

for t in page_decoder record_decoder chat_page_decoder entity_decoder; do
  echo "seeded $corpus/$t: $(find "$corpus/$t" -type f | wc -l) files"
done
