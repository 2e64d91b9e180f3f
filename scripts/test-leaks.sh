#!/usr/bin/env bash
# npm run test:leaks: runs every native entry point on a tiny model under valgrind's memcheck and
# reports the "definitely lost" blocks whose stack passes through convscope's own code. Node and
# libtorch keep some allocations for the life of the process (never freed, still reachable or lost
# in their own code); only convscope's are counted. Slow (a few minutes), so not part of npm test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq valgrind >/dev/null; else echo "test:leaks needs valgrind: sudo apt-get install valgrind" >&2; exit 1; fi
fi
[ -f build/Release/convscope.node ] || npm run build:addon
log=$(mktemp)
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --num-callers=40 --log-file="$log" node --jitless test/leaks/exercise-native.js
ours=$(awk '/definitely lost in loss record/{block=1; text=""} block{text=text"\n"$0} /^==[0-9]+== $/{if(block && text ~ /convscope/){n++; print text} block=0} END{print "CONVSCOPE_DEFINITE_LEAKS=" n+0}' "$log")
echo "$ours" | tail -40
summary=$(grep -A5 "LEAK SUMMARY" "$log" || true)
echo "$summary"
count=$(echo "$ours" | sed -n 's/^CONVSCOPE_DEFINITE_LEAKS=//p')
echo "valgrind log: $log"
if [ "$count" != "0" ]; then echo "test:leaks: $count definite leak(s) in convscope's code" >&2; exit 1; fi
echo "test:leaks: 0 definite leaks from convscope's code"
